package config_test

import (
	"fmt"

	"github.com/portcullis-mta/portcullis/core/config"
)

// Every problem is reported, each at its file:line:col.
func ExampleParse() {
	_, err := config.Parse([]byte(`hostname: mx.example.test
listeners:
  - {name: mx, address: "127.0.0.1:2525", tls: startls}
queue: {retry: [1m, 5x]}
`), "/etc/portcullis/portcullis.yaml")
	fmt.Println(err)
	// Output:
	// /etc/portcullis/portcullis.yaml:3:48: listeners[0].tls: "startls" is not one of none, starttls, implicit
	// /etc/portcullis/portcullis.yaml:4:21: queue.retry[1]: invalid duration "5x" (use Go syntax like 90s, 5m, 2h, or days like 5d)
}
