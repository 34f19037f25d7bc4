# A small web server's firewall, as a runbook would set it up.
sudo ufw default deny incoming
sudo ufw default allow outgoing
sudo ufw limit ssh comment 'admin access'
sudo ufw allow "Nginx Full"
sudo ufw allow from 10.0.0.0/8 to any port 5432 proto tcp
sudo ufw deny in on eth0 from 203.0.113.0/24
sudo ufw reject out 25/tcp
sudo ufw allow from 2001:db8:1::/48 to any port 9100 proto tcp
sudo ufw route allow in on eth1 out on eth0 from 192.168.1.0/24
sudo ufw insert 1 deny from 198.51.100.66
sudo ufw --force enable
