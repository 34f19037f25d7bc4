# The admin CIDR comes from the pipeline: SSH is public if it is 0.0.0.0/0.
variable "admin_cidr" {}

resource "aws_security_group" "admin" {
  name = "admin"
  # expect: RA404
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [var.admin_cidr]
  }
}
