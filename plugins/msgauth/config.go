package msgauth

import (
	"fmt"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"

	"github.com/portcullis-mta/portcullis/sdk/cfgval"
)

var configKeys = []string{"authserv_id", "timeout", "max_signatures", "helo_spf"}

// parseConfig reads the config map; keys are read in sorted order, so
// that of two mistakes the same one is reported each time.
func parseConfig(env sdk.Env, raw map[string]any) (config, error) {
	cfg := config{authservID: env.Hostname, timeout: 10 * time.Second, maxSigs: 5, heloSPF: true}
	err := cfgval.Each(raw, func(k string, v any) (err error) {
		key := cfgval.Key(k)
		switch k {
		case "authserv_id":
			cfg.authservID, err = key.String(v)
		case "timeout":
			cfg.timeout, err = key.PositiveDuration(v)
		case "max_signatures":
			cfg.maxSigs, err = key.Whole(v, 1, 1000)
		case "helo_spf":
			cfg.heloSPF, err = key.Bool(v)
		default:
			err = cfgval.UnknownKey(k, configKeys)
		}
		return err
	})
	if err != nil {
		return config{}, err
	}
	if cfg.authservID == "" || strings.ContainsAny(cfg.authservID, " \t;()\r\n") {
		return config{}, fmt.Errorf("authserv_id: %q is not a valid authserv-id (RFC 8601 2.5)", cfg.authservID)
	}
	return cfg, nil
}
