package aws.s3_no_public_read

# Canned ACLs that let anyone on the internet list or read the bucket's objects.
public_acls := {"public-read", "public-read-write"}

violations contains v if {
	some r in input.resources
	r.type == "aws:s3/bucket:Bucket"
	r.properties.acl in public_acls
	v := {
		"message": sprintf("S3 bucket %s has the public ACL %s", [r.name, r.properties.acl]),
		"urn": r.urn,
		"details": {"acl": r.properties.acl},
	}
}
