# The port variable has a value: SSH is open to the world for sure (RA401), nothing depends on configuration.
variable "port" { default = 22 }

resource "aws_security_group" "admin" {
  name = "admin"
  ingress {
    from_port   = var.port
    to_port     = var.port
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
