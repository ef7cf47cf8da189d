package avro

// HasDirectDecoder reports whether s decodes records read with s itself
// through the direct decoder (fast.go) rather than goavro; for the external
// tests.
func HasDirectDecoder(s *Schema) bool { return s.fast != nil }
