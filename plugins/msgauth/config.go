package msgauth

import (
	"fmt"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

func parseConfig(env sdk.Env, raw map[string]any) (config, error) {
	cfg := config{authservID: env.Hostname, timeout: 10 * time.Second, maxSigs: 5, heloSPF: true}
	for k, v := range raw {
		var err error
		switch k {
		case "authserv_id":
			cfg.authservID, err = str(k, v)
		case "timeout":
			var s string
			if s, err = str(k, v); err == nil {
				cfg.timeout, err = time.ParseDuration(s)
				if err == nil && cfg.timeout <= 0 {
					err = fmt.Errorf("must be positive")
				}
			}
		case "max_signatures":
			cfg.maxSigs, err = count(v)
		case "helo_spf":
			b, ok := v.(bool)
			if !ok {
				err = fmt.Errorf("want true or false, got %v", v)
			}
			cfg.heloSPF = b
		default:
			err = fmt.Errorf("unknown key")
		}
		if err != nil {
			return config{}, fmt.Errorf("msgauth: %s: %v", k, err)
		}
	}
	if cfg.authservID == "" || strings.ContainsAny(cfg.authservID, " \t;()\r\n") {
		return config{}, fmt.Errorf("msgauth: authserv_id: %q is not a valid authserv-id (RFC 8601 2.5)", cfg.authservID)
	}
	return cfg, nil
}

func str(_ string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("want a string, got %T", v)
	}
	return s, nil
}

// count reads a positive whole number, however the YAML or the wire typed it.
func count(v any) (int, error) {
	var n int
	switch x := v.(type) {
	case int:
		n = x
	case int64:
		n = int(x)
	case float64:
		if x != float64(int(x)) {
			return 0, fmt.Errorf("want a whole number, got %v", v)
		}
		n = int(x)
	default:
		return 0, fmt.Errorf("want a number, got %T", v)
	}
	if n < 1 {
		return 0, fmt.Errorf("must be at least 1")
	}
	return n, nil
}
