// Package examples holds the example configurations shipped with
// Portcullis; Quickstart is the built-in default configuration that
// `portcullis run` uses when no -c FILE is given.
package examples

import _ "embed"

// Quickstart is examples/quickstart/portcullis.yaml: a gateway on
// 127.0.0.1:2525 relaying example.test to a local sink on 127.0.0.1:2626.
//
//go:embed quickstart/portcullis.yaml
var Quickstart []byte
