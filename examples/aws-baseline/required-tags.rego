package aws.required_tags

# Tags every taggable resource must carry: config "requiredTags", else just "owner".
default required_tags := ["owner"]

required_tags := input.config.requiredTags

taggable_types := {
	"aws:s3/bucket:Bucket",
	"aws:ebs/volume:Volume",
	"aws:ec2/instance:Instance",
	"aws:ec2/vpc:Vpc",
	"aws:ec2/subnet:Subnet",
	"aws:ec2/securityGroup:SecurityGroup",
	"aws:rds/instance:Instance",
	"aws:lambda/function:Function",
	"aws:dynamodb/table:Table",
}

# An empty value counts as missing: it says nothing about who owns the resource.
tagged(r, tag) if {
	value := r.properties.tags[tag]
	value != ""
}

violations contains v if {
	some r in input.resources
	r.type in taggable_types
	missing := sort({tag | some tag in required_tags; not tagged(r, tag)})
	count(missing) > 0
	v := {
		"message": sprintf("%s %s is missing required tags: %s", [r.type, r.name, concat(", ", missing)]),
		"urn": r.urn,
		"details": {"missingTags": missing},
	}
}
