package aws.ec2_instance_type_allowlist

# Instance types allowed unless config "allowedTypes" names others.
default allowed_types := ["t3.micro", "t3.small", "t3.medium"]

allowed_types := input.config.allowedTypes

violations contains v if {
	some r in input.resources
	r.type == "aws:ec2/instance:Instance"
	instance_type := object.get(r.properties, "instanceType", "")
	not instance_type in allowed_types
	v := {
		"message": sprintf("EC2 instance %s has type %q, not one of %s", [r.name, instance_type, concat(", ", allowed_types)]),
		"urn": r.urn,
		"details": {"instanceType": instance_type, "allowedTypes": allowed_types},
	}
}
