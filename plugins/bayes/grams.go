package bayes

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"sync"
)

// The second opinion: a logistic regression on the byte 4-grams of the
// start of the raw message, the features of the "lr" filter that did best
// at the TREC 2007 spam track (Cormack, "University of Waterloo
// participation in the TREC 2007 spam track"; Goodman and Yih, "Online
// discriminative spam filter training", CEAS 2006). Its logit is added to
// Fisher's, weighted by Config.GramWeight.
//
// Fisher's tokens are words after MIME decoding; the 4-grams see the raw
// header and body bytes as sent (mailer quirks, encodings, header layout)
// and weigh every feature by its learned contribution instead of ignoring
// the weak ones. In repeated cross-validation on TRAIN (cvsweep_test.go),
// the blend missed about a sixth fewer spam at the same false positives.
//
// The constants were chosen by that cross-validation: 2,000 bytes (mostly
// the header; 1,000-3,000 tried), 2^18 weights (2^20 and 2^22 no better: a
// smaller table stays in the CPU cache when classifying), two
// passes at rate 0.01 for a bulk learn (three, or rate 0.02, no better).
const (
	gramBytes  = 2000 // bytes of the raw message read
	gramBits   = 18   // the weight table has 1<<gramBits entries (1 MiB)
	gramRate   = 0.01 // step of one learned message
	gramEpochs = 2    // passes over a bulk learn (Trainer)
	fisherClip = 30.0 // Fisher's logit is clipped to +-this before the blend
	gramTable  = 1 << gramBits
)

// Weights are the logistic regression's weights, indexed by gram feature.
// The zero value (nil) is an untrained model: every logit is 0.
type Weights []float32

// gramFeatures returns the distinct features of raw: each run of 4 bytes
// within its first gramBytes bytes (after an mbox "From " line), hashed to
// gramBits bits, in order of first appearance. It appends to dst[:0].
func gramFeatures(raw []byte, dst []uint32) []uint32 {
	dst = dst[:0]
	eachGram(raw, func(h uint32) { dst = append(dst, h) })
	return dst
}

// logitOf is w.logit(gramFeatures(raw, nil)) in one pass, without the
// slice: what classifying needs.
func (w Weights) logitOf(raw []byte) float64 {
	if w == nil {
		return 0
	}
	var z float32
	eachGram(raw, func(h uint32) { z += w[h] })
	return float64(z)
}

// eachGram calls fn with each distinct feature of raw (see gramFeatures),
// in order of first appearance.
func eachGram(raw []byte, fn func(h uint32)) {
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		}
	}
	raw = raw[:min(len(raw), gramBytes)]
	seen := gramSeen.Get().(*[gramTable / 64]uint64)
	for i := 0; i+4 <= len(raw); i++ {
		h := gramHash(binary.LittleEndian.Uint32(raw[i:]))
		if bit := uint64(1) << (h & 63); seen[h>>6]&bit == 0 {
			seen[h>>6] |= bit
			fn(h)
		}
	}
	for i := 0; i+4 <= len(raw); i++ { // clear what was set
		seen[gramHash(binary.LittleEndian.Uint32(raw[i:]))>>6] = 0
	}
	gramSeen.Put(seen)
}

// gramSeen holds cleared bitmaps of the feature space, for deduplicating
// (a sort of 2,000 features cost as much as the rest of the model).
var gramSeen = sync.Pool{New: func() any { return new([gramTable / 64]uint64) }}

// gramHash maps 4 bytes (as a little-endian uint32) to a feature: Knuth's
// multiplicative hash, whose top bits depend on every input bit. In the
// cross-validation it did as well as xxhash of the 4 bytes, at a fraction
// of the cost.
func gramHash(v uint32) uint32 { return (v * 0x9E3779B1) >> (32 - gramBits) }

// logit is the model's log-odds that a message with features f is spam.
func (w Weights) logit(f []uint32) float64 {
	if w == nil {
		return 0
	}
	var z float32
	for _, i := range f {
		z += w[i]
	}
	return float64(z)
}

// step is one stochastic gradient step of the logistic loss on a message
// with features f of class spam: every weight of f moves by
// rate * (y - p), where y is 1 for spam and p the model's probability.
func (w Weights) step(f []uint32, spam bool, rate float64) {
	y := 0.0
	if spam {
		y = 1
	}
	g := float32(rate * (y - sigmoid(w.logit(f))))
	for _, i := range f {
		w[i] += g
	}
}

// train runs epochs passes of step over msgs in a shuffled order (seeded,
// so the same learn gives the same model).
func (w Weights) train(msgs []Learned, epochs int) {
	order := make([]int, len(msgs))
	for i := range order {
		order[i] = i
	}
	r := rand.New(rand.NewPCG(uint64(len(msgs)), 0x5eed))
	for e := 0; e < epochs; e++ {
		r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			w.step(msgs[i].Grams, msgs[i].Spam, gramRate)
		}
	}
}

// blend combines Fisher's score and the gram model's logit z with weight
// b: sigmoid(logit(fisher) + b*z), Fisher's logit clipped to +-fisherClip
// (its scores reach 1e-300, which would leave the other opinion no say).
func blend(fisher, z, b float64) float64 {
	if b == 0 || z == 0 {
		return fisher
	}
	p := math.Min(math.Max(fisher, 1e-300), 1)
	lf := math.Log(p) - math.Log1p(-p)
	if math.IsInf(lf, 1) || lf > fisherClip {
		lf = fisherClip
	}
	lf = math.Max(lf, -fisherClip)
	return sigmoid(lf + b*z)
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// encodeWeights and decodeWeights are the stored form: float32 little
// endian, gramTable of them.
func encodeWeights(w Weights) []byte {
	b := make([]byte, 4*len(w))
	for i, v := range w {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func decodeWeights(b []byte) Weights {
	if len(b) != 4*gramTable {
		return nil // none stored, or from another table size: untrained
	}
	w := make(Weights, gramTable)
	for i := range w {
		w[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return w
}
