package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestBadConfigs asserts the exact message and position of each problem.
// In want, "F" stands for the config file's path.
func TestBadConfigs(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"syntax error", "hostname: [a\n", []string{"F:1:1: did not find expected ',' or ']'"}},
		{"unknown top key", minimal + "hostnme: x\n", []string{`F:5:1: unknown key "hostnme" (did you mean "hostname"?)`}},
		{"unknown nested key", minimal + "    adress: x\n", []string{`F:5:5: unknown key "listeners[0].adress" (did you mean "address"?)`}},
		{"address misspelt", "hostname: a.test\nlisteners:\n  - name: mx\n    adress: \"127.0.0.1:25\"\n", []string{
			`F:3:5: listeners[0].address: missing: want host:port`,
			`F:4:5: unknown key "listeners[0].adress" (did you mean "address"?)`,
		}},
		{"next_hop misspelt", minimal + "routes: [{domains: [\"*\"], nexthop: mx}]\n", []string{
			`F:5:10: routes[0].next_hop: missing: want "mx" or host:port`,
			`F:5:27: unknown key "routes[0].nexthop" (did you mean "next_hop"?)`,
		}},
		{"duplicate key", minimal + "hostname: b.test\n", []string{`F:5:1: duplicate key "hostname"`}},
		{"root not mapping", "- a\n", []string{"F:1:1: config: want a mapping of keys"}},
		{"empty file", "", []string{"F:1:1: listeners: at least one listener is needed"}},
		{"bad hostname", "hostname: a..b\nlisteners: [{name: x, address: ':25'}]\n",
			[]string{`F:1:11: hostname: "a..b" is not a valid host name`}},
		{"no listeners", "hostname: a.test\nlisteners: []\n", []string{"F:2:12: listeners: at least one listener is needed"}},
		{"listener problems", `hostname: a.test
listeners:
  - {name: a, address: "nope", tls: tls, auth: maybe}
  - {name: a, address: ":99999"}
  - {address: ":25", proxy_protocol: true}
`, []string{
			`F:3:24: listeners[0].address: "nope" is not host:port`,
			`F:3:37: listeners[0].tls: "tls" is not one of none, starttls, implicit`,
			`F:3:48: listeners[0].auth: "maybe" is not one of none, optional, required`,
			`F:4:12: listeners[1].name: duplicate listener name "a"`,
			`F:4:24: listeners[1].address: ":99999": invalid port "99999"`,
			`F:5:5: listeners[2].name: must not be empty`,
			`F:5:38: listeners[2].proxy_protocol: needs trusted_proxies (who may claim a client address)`,
		}},
		{"same address twice", minimal + "  - {name: b, address: \"127.0.0.1:2525\"}\n",
			[]string{`F:5:24: listeners[1].address: "127.0.0.1:2525" is used by another listener`}},
		{"overlapping listeners", `hostname: a.test
listeners:
  - {name: v4, address: "0.0.0.0:2525"}
  - {name: v6, address: "[::]:2525"}
  - {name: lo4, address: "127.0.0.1:2525"}
  - {name: lo6, address: "[::1]:2525"}
  - {name: all, address: ":2526"}
  - {name: lo, address: "127.0.0.1:2526"}
  - {name: other, address: "127.0.0.2:2525"}
  - {name: lo6b, address: "[0::1]:2525"}
  - {name: mapped, address: "[::ffff:127.0.0.3]:2525"}
`, []string{
			`F:5:26: listeners[2].address: "127.0.0.1:2525" overlaps listener v4 ("0.0.0.0:2525"): both cannot be bound`,
			`F:6:26: listeners[3].address: "[::1]:2525" overlaps listener v6 ("[::]:2525"): both cannot be bound`,
			`F:8:25: listeners[5].address: "127.0.0.1:2526" overlaps listener all (":2526"): both cannot be bound`,
			`F:9:28: listeners[6].address: "127.0.0.2:2525" overlaps listener v4 ("0.0.0.0:2525"): both cannot be bound`,
			`F:10:27: listeners[7].address: "[0::1]:2525" overlaps listener v6 ("[::]:2525"): both cannot be bound`,
			`F:11:29: listeners[8].address: "[::ffff:127.0.0.3]:2525" overlaps listener v4 ("0.0.0.0:2525"): both cannot be bound`,
		}},
		{"one address written two ways", `hostname: a.test
listeners:
  - {name: a, address: "[::1]:2525"}
  - {name: b, address: "[0::1]:2525"}
  - {name: c, address: "[::ffff:0.0.0.0]:2525"}
`, []string{
			`F:4:24: listeners[1].address: "[0::1]:2525" overlaps listener a ("[::1]:2525"): both cannot be bound`,
			`F:5:24: listeners[2].address: "[::ffff:0.0.0.0]:2525" overlaps listener a ("[::1]:2525"): both cannot be bound`,
		}},
		{"starttls without cert", minimal + "    tls: starttls\n", []string{"F:5:10: listeners[0].tls: starttls needs tls.cert and tls.key"}},
		{"auth without users", minimal + "    auth: required\n", []string{"F:5:11: listeners[0].auth: required needs relay.users_file"}},
		{"missing cert files", minimal + "tls: {cert: c.pem, key: k.pem}\n", []string{
			"F:5:13: tls.cert: D/c.pem: no such file or directory",
			"F:5:25: tls.key: D/k.pem: no such file or directory",
		}},
		{"cert without key", minimal + "tls: {cert: p.yaml}\n", []string{"F:5:6: tls: cert without key"}},
		{"bad types", minimal + "limits: {max_connections: lots, data_timeout: 5 minutes}\nlisteners2: 1\n", []string{
			`F:5:27: limits.max_connections: want a whole number, got "lots"`,
			`F:5:47: limits.data_timeout: invalid duration "5 minutes" (use Go syntax like 90s, 5m, 2h, or days like 5d)`,
			`F:6:1: unknown key "listeners2" (did you mean "listeners"?)`,
		}},
		{"bool", minimal + "    proxy_protocol: yes\n", []string{`F:5:21: listeners[0].proxy_protocol: want true or false, got "yes"`}},
		{"list expected", minimal + "relay: {domains: example.test}\n", []string{"F:5:18: relay.domains: want a list"}},
		{"relay problems", minimal + `relay:
  domains: [ok.test, "bad domain", "*.", "-x.test", "*x.test"]
  networks: ["10.0.0.0/33", "192.168.1.0,255.0.255.0", "10.0.0.1,255.255.255.0", "fe80::1%eth0", "10.0.0.1,33"]
  users_file: users.txt
`, []string{
			`F:6:22: relay.domains[1]: "bad domain" is not a domain name (example.test, or .example.test / *.example.test for subdomains)`,
			`F:6:36: relay.domains[2]: "*." is not a domain name (example.test, or .example.test / *.example.test for subdomains)`,
			`F:6:42: relay.domains[3]: "-x.test" is not a domain name (example.test, or .example.test / *.example.test for subdomains)`,
			`F:6:53: relay.domains[4]: "*x.test" is not a domain name (example.test, or .example.test / *.example.test for subdomains)`,
			`F:7:14: relay.networks[0]: invalid network "10.0.0.0/33"`,
			`F:7:29: relay.networks[1]: mask "255.0.255.0" is not contiguous`,
			`F:7:82: relay.networks[3]: invalid network "fe80::1%eth0" (want CIDR, address, or address,mask)`,
			`F:7:98: relay.networks[4]: invalid mask "33"`,
			"F:8:15: relay.users_file: D/users.txt: no such file or directory",
		}},
		{"route problems", minimal + `routes:
  - {domains: [], next_hop: "10.0.0.5", tls: maybe}
  - {domains: ["*.", "x.test"], next_hop: mx, concurrency: 0}
  - domains: ["*"]
    next_hop: "isp.test:587"
    auth: {username: u}
  - domains: ["*"]
    next_hop: "isp.test:587"
    tls: none
    auth: {username: u, password_file: p.yaml}
  - {next_hop: ":25"}
  - {domains: [v.test], next_hop: "v.test:25", tls: opportunistic, tls_verify: true}
`, []string{
			`F:6:15: routes[0].domains: must list at least one domain (or "*")`,
			`F:6:29: routes[0].next_hop: want "mx" or host:port: "10.0.0.5" is not host:port`,
			`F:6:46: routes[0].tls: "maybe" is not one of none, opportunistic, required, implicit`,
			`F:7:16: routes[1].domains[0]: "*." is not a domain, "*.suffix" or "*"`,
			"F:7:60: routes[1].concurrency: must be positive",
			"F:10:11: routes[2].auth.password_file: must be set",
			"F:10:11: routes[2].tls: opportunistic would send the password without TLS; use required or implicit, or set auth.allow_plaintext",
			"F:13:10: routes[3].tls: none would send the password without TLS; use required or implicit, or set auth.allow_plaintext",
			`F:15:5: routes[4].domains: must list at least one domain (or "*")`,
			`F:15:16: routes[4].next_hop: want "mx" or host:port: ":25" has no host`,
			"F:16:80: routes[5].tls_verify: true has no effect with tls: opportunistic; use tls: required to verify the next hop's certificate",
		}},
		{"queue problems", minimal + "queue: {retry: [], max_age: 0, bounce: sometimes, workers: -1, dir: ''}\n", []string{
			"F:5:16: queue.retry: must list at least one interval",
			"F:5:29: queue.max_age: must be positive",
			`F:5:40: queue.bounce: "sometimes" is not one of local, all, none`,
			"F:5:60: queue.workers: must be positive",
			"F:5:69: queue.dir: must not be empty",
		}},
		{"quarantine is the queue", minimal + "queue: {dir: spool, quarantine_dir: ./spool/}\n", []string{
			"F:5:37: queue.quarantine_dir: D/spool is the same directory as queue.dir D/spool: quarantined mail would be delivered by the queue; use a directory of its own",
		}},
		{"quarantine inside the queue", minimal + "queue: {dir: spool, quarantine_dir: spool/q}\n", []string{
			"F:5:37: queue.quarantine_dir: D/spool/q lies inside queue.dir D/spool: quarantined mail would be delivered by the queue; use a directory of its own",
		}},
		{"quarantine holds the queue", minimal + "queue: {dir: quarantine/spool}\n", []string{
			"F:5:14: queue.quarantine_dir: D/quarantine contains queue.dir D/quarantine/spool: quarantined mail would be delivered by the queue; use a directory of its own",
		}},
		{"dkim headers", minimal + `dkim: {sign: [{domain: a.test, selector: s, key: p.yaml, headers: [Subject, Received, "X:Y"]}]}
`, []string{
			"F:5:67: dkim.sign[0].headers: must include From (RFC 6376 5.4)",
			"F:5:77: dkim.sign[0].headers[1]: Received is added by relays on the way and must not be signed",
			`F:5:87: dkim.sign[0].headers[2]: "X:Y" is not a header field name`,
		}},
		{"negative retry", minimal + "queue: {retry: [1m, 0s]}\n", []string{"F:5:21: queue.retry[1]: must be positive"}},
		{"negative connection rate", minimal + "limits: {max_connection_rate: -1}\n",
			[]string{"F:5:31: limits.max_connection_rate: must not be negative (0: no limit)"}},
		{"misc problems", minimal + `log: {format: xml, level: loud}
metrics: {address: "9425"}
dns: {servers: ["ns.test"], timeout: 0s}
state: {redis: "http://x"}
dkim: {sign: [{domain: "", selector: "", key: missing.key}]}
include: ["[a-"]
limits: {max_line_length: 512, max_recipients: 0}
`, []string{
			`F:5:15: log.format: "xml" is not one of text, json`,
			`F:5:27: log.level: "loud" is not one of debug, info, warn, error`,
			`F:6:20: metrics.address: "9425" is not host:port`,
			`F:7:17: dns.servers[0]: "ns.test" is not host:port`,
			"F:7:38: dns.timeout: must be positive",
			`F:8:16: state.redis: not a redis:// or rediss:// URL; want redis://[:PASSWORD@]HOST:PORT/DB or rediss://...`,
			`F:9:24: dkim.sign[0].domain: "" is not a domain name`,
			"F:9:38: dkim.sign[0].selector: must not be empty",
			"F:9:47: dkim.sign[0].key: D/missing.key: no such file or directory",
			"F:10:11: include[0]: bad pattern: syntax error in pattern",
			"F:11:27: limits.max_line_length: RFC 5321 4.5.3.1.6 requires at least 1000",
			"F:11:48: limits.max_recipients: must be positive",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := write(t, dir, "p.yaml", c.yaml)
			_, err := Load(path)
			if err == nil {
				t.Fatal("loaded without error")
			}
			got := strings.Split(err.Error(), "\n")
			r := strings.NewReplacer(path+":", "F:", dir+string(filepath.Separator), "D/")
			for i := range got {
				got[i] = r.Replace(got[i])
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// TestRedisURLProblems: a bad state.redis is refused with the reason, and
// never with its password (check's output goes to the journal).
func TestRedisURLProblems(t *testing.T) {
	for raw, want := range map[string]string{
		"redis://:s3cret@127.0.0.1:6379/0":     "",
		"rediss://u:s3cret@redis.example/12":   "",
		"redis//:s3cret@127.0.0.1:46313/5":     "not a redis:// or rediss:// URL",
		"redis://:s3cret@127.0.0.1:notaport/5": "not a URL",
		"redis://:s3cret/9pQ@127.0.0.1:6379/0": "not a URL",
		"redis://:s3cret%zz@127.0.0.1:6379/0":  "not a URL",
		"redis://:s3cret@127.0.0.1:0/5":        `redis://:xxxxx@127.0.0.1:0/5: bad port "0"`,
		"redis://:s3cret@127.0.0.1:6379/-1":    `redis://:xxxxx@127.0.0.1:6379/-1: the database "-1" is not a number from 0`,
		"redis://:s3cret@127.0.0.1:6379/a/b":   `the database "a/b" is not a number`,
	} {
		got := redisURLProblem(raw)
		if (want == "") != (got == "") || !strings.Contains(got, want) || strings.Contains(got, "s3cret") {
			t.Errorf("%s: %q, want %q (and no password)", raw, got, want)
		}
	}
}
