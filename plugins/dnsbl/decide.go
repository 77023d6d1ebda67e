package dnsbl

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/portcullis-mta/portcullis/sdk"
)

// decide turns the answers (in zone order) into a result. A failed zone
// makes the check an error unless a DNSWL listing or the block listings
// alone already decide; the block listings do not when a DNSWL could not
// be asked (a timeout, SERVFAIL: its listing would have passed the client,
// and the client retries), only when it refused to say (zoneRefusal).
func decide(answers []answer, threshold float64) (*sdk.Result, error) {
	var (
		weight                 float64
		tags, zones, codes     []string
		reasons, allows, errs  []string
		firstZone, firstReason string
		seenWeight             = map[string]bool{}
		errList                []error
		allowFailed            bool // a DNSWL zone could not be asked
	)
	for _, a := range answers {
		z := a.q.zone
		if a.err != nil {
			errs = append(errs, z.name)
			errList = append(errList, a.err)
			var refused zoneRefusal
			allowFailed = allowFailed || z.allow && !errors.As(a.err, &refused)
			continue
		}
		if len(a.codes) == 0 {
			continue
		}
		tag := z.name
		if z.domain {
			tag += ":" + a.q.target
		}
		tags = append(tags, tag)
		if z.allow {
			allows = append(allows, z.name)
			continue
		}
		if !seenWeight[z.name] { // an RHSBL listing HELO and sender counts once
			seenWeight[z.name] = true
			weight += z.weight
			zones = append(zones, z.name)
		}
		if firstZone == "" {
			firstZone, firstReason = z.name, a.reason
		}
		codes = append(codes, tag+"="+strings.Join(a.codes, "+"))
		if a.reason != "" {
			reasons = append(reasons, tag+": "+a.reason)
		}
	}
	weight = roundWeight(weight)
	attrs := map[string]string{
		"zone": firstZone, "zones": strings.Join(zones, ","), "codes": strings.Join(codes, ","),
		"reason": firstReason, "reasons": strings.Join(reasons, " | "),
		"weight": strconv.FormatFloat(weight, 'f', -1, 64),
	}
	if len(errs) > 0 {
		attrs["errors"] = strings.Join(errs, ",")
	}
	res := &sdk.Result{Score: weight, Tags: tags, Attrs: attrs}
	switch {
	case len(allows) > 0:
		attrs["allow_zones"] = strings.Join(allows, ",")
		res.Tags = append([]string{"dnswl"}, tags...)
		res.Verdict, res.Reason = sdk.VerdictPass, "listed at DNSWL "+allows[0]
	case len(zones) > 0 && weight >= threshold && !allowFailed:
		res.Verdict = sdk.VerdictFail
		res.Reason = fmt.Sprintf("listed at %s (weight %s)", attrs["zones"], attrs["weight"])
	case len(errList) > 0:
		return nil, fmt.Errorf("dnsbl: %w", errors.Join(errList...))
	case len(zones) > 0:
		res.Verdict = sdk.VerdictNeutral
		res.Reason = fmt.Sprintf("listed at %s, weight %s below threshold", attrs["zones"], attrs["weight"])
	default:
		res.Verdict = sdk.VerdictNone
	}
	return res, nil
}

// roundWeight rounds a sum of zone weights to nine decimal places. The
// weights are decimal fractions in the config, which binary floating point
// holds only approximately: 0.7 + 0.2 adds up to 0.8999999999999999, which
// would fall short of a threshold of 0.9 and show up as such in attrs.
func roundWeight(w float64) float64 {
	return math.Round(w*1e9) / 1e9
}
