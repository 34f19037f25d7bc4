# The variable has a default and it is private: nothing depends on the pipeline.
variable "admin_cidr" {
  default = "10.0.0.0/8"
}

resource "aws_security_group" "admin" {
  name = "admin"
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [var.admin_cidr]
  }
}
