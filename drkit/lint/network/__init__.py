"""Environment isolation lint: proves from VPC, security-group, peering, route, instance and
database data (AWS and Tencent Cloud, exports or live) that development and test cannot
reach production. ``drkit lint network``; see docs/lint.md."""
