package aws.ebs_volumes_encrypted

violations contains v if {
	some r in input.resources
	r.type == "aws:ebs/volume:Volume"
	object.get(r.properties, "encrypted", false) != true
	v := {
		"message": sprintf("EBS volume %s is not encrypted", [r.name]),
		"urn": r.urn,
	}
}
