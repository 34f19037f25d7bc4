# The same GCP firewall rules and Azure NSG as fw.plan.json, fw.gcp.json and fw.nsg.json.
resource "google_compute_firewall" "ssh" {
  name          = "allow-ssh"
  network       = "prod"
  priority      = 900
  source_ranges = ["198.51.100.0/24"]
  target_tags   = ["bastion"]
  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
}

resource "google_compute_firewall" "web" {
  name          = "allow-web"
  network       = "prod"
  source_ranges = ["0.0.0.0/0", "::/0"]
  allow {
    protocol = "tcp"
    ports    = ["80", "443", "8000-8080"]
  }
}

resource "google_compute_firewall" "telnet" {
  name          = "deny-telnet"
  network       = "prod"
  priority      = 800
  source_ranges = ["0.0.0.0/0"]
  deny {
    protocol = "tcp"
    ports    = ["23"]
  }
}

resource "azurerm_network_security_group" "app" {
  name                = "app-nsg"
  location            = "westeurope"
  resource_group_name = "rg1"

  security_rule {
    name                       = "deny-rdp"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "3389"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }

  security_rule {
    name                       = "allow-admin"
    priority                   = 200
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_ranges    = ["22", "3389"]
    source_address_prefixes    = ["198.51.100.0/24", "203.0.113.0/24"]
    destination_address_prefix = "*"
  }

  security_rule {
    name                       = "allow-https"
    priority                   = 300
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "443"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}
