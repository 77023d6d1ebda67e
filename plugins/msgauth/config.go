package msgauth

import (
	"fmt"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"

	"github.com/portcullis-mta/portcullis/sdk/cfgval"
)

func parseConfig(env sdk.Env, raw map[string]any) (config, error) {
	cfg := config{authservID: env.Hostname, timeout: 10 * time.Second, maxSigs: 5, heloSPF: true}
	for k, v := range raw {
		var err error
		switch k {
		case "authserv_id":
			cfg.authservID, err = cfgval.String(v)
		case "timeout":
			cfg.timeout, err = cfgval.Duration(v)
			if err == nil && cfg.timeout <= 0 {
				err = fmt.Errorf("must be positive")
			}
		case "max_signatures":
			cfg.maxSigs, err = cfgval.Whole(v, 1, 1000)
		case "helo_spf":
			cfg.heloSPF, err = cfgval.Bool(v)
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
