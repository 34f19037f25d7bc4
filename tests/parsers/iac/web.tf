# The same firewall as web.plan.json, web.cfn.yaml and web.sg.json + web.nacl.json.
variable "ssh_from" {
  default = "198.51.100.0/24"
}

locals {
  https = 443
}

resource "aws_security_group" "web" {
  name   = "web"
  vpc_id = "vpc-1"

  ingress {
    from_port        = local.https
    to_port          = local.https
    protocol         = "tcp"
    cidr_blocks      = ["0.0.0.0/0"]
    ipv6_cidr_blocks = ["::/0"]
  }

  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [var.ssh_from]
  }

  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_network_acl" "public" {
  vpc_id     = "vpc-1"
  subnet_ids = ["subnet-web"]

  ingress {
    rule_no    = 100
    action     = "deny"
    protocol   = "tcp"
    from_port  = 22
    to_port    = 22
    cidr_block = "0.0.0.0/0"
  }

  ingress {
    rule_no    = 200
    action     = "allow"
    protocol   = "tcp"
    from_port  = 1024
    to_port    = 65535
    cidr_block = "0.0.0.0/0"
  }

  dynamic "ingress" {
    for_each = [443]
    content {
      rule_no    = 150
      action     = "allow"
      protocol   = "tcp"
      from_port  = ingress.value
      to_port    = ingress.value
      cidr_block = "0.0.0.0/0"
    }
  }

  ingress {
    rule_no    = 300
    action     = "allow"
    protocol   = "icmp"
    from_port  = 0
    to_port    = 0
    icmp_type  = 8
    icmp_code  = -1
    cidr_block = "0.0.0.0/0"
  }

  egress {
    rule_no    = 100
    action     = "allow"
    protocol   = "-1"
    from_port  = 0
    to_port    = 0
    cidr_block = "0.0.0.0/0"
  }
}
