package bayes

import "os"

// cvSweep lists the configurations TestCVSweep compares, each a change
// from the defaults.
func cvSweep() []cvSetup {
	base := defaultSetup()
	var out []cvSetup
	add := func(name string, f func(c *cvSetup)) {
		c := base
		c.name = name
		f(&c)
		out = append(out, c)
	}
	add("defaults", func(c *cvSetup) {})
	if os.Getenv("BAYES_MISSES") != "" {
		return out
	}
	// Tried on top of ShareAddr and HdrOrder (5 x 5-fold, FP/FN at 0.9,
	// defaults 26/121): RobS 0.2 25/136, RobS 0.4 40/133, RobX 0.52 24/129,
	// 3 rounds 24/123, MinLen 3 21/146: each a move along the same FP/FN
	// curve, not below it. Tried before them and rejected (same measure,
	// defaults then 34/120): MIME-structure and part-charset tokens (34/120),
	// URL path words (no gain), OSB distance-2 word pairs (FP +8 for FN
	// -10 at every MinDev and RobS tried), case-preserved duplicates of
	// capitalised words (40/115), Subject shape tokens (no change), a
	// stricter ham margin in the rounds (33/122), clipping f to [c, 1-c]
	// (c 0.005-0.02: more FN), Fisher evidence scaled for correlation
	// (moves along the curve), blending two MinDev values (FP 50),
	// counting tokens with identical counts once (FP 55); Received words
	// under the shared prefix too (23/141).
	//
	// Tried in the third session with one-off prototypes (5-fold, seed 0,
	// defaults 6/20 at 0.9, 3/29 at 0.99), none kept: a logistic
	// regression on the same tokens trained by SGD (binary or length-
	// normalised features, 10-40 epochs, with and without L2) is worse
	// alone at every cutoff (best 4/104 at 0.9), and its logit averaged
	// with Fisher's lands on Fisher's curve (3/25-26 at 0.9; over 5 x 5
	// folds, a 0.2 share of its logit gives 24/126 at 0.9 and 19/140 at
	// 0.95, within a few messages of Fisher's 24/131 and 17/155, not worth
	// a second model to store and keep learning); scoring
	// header and body tokens separately and averaging the logits (3/26 at
	// 0.9) or taking the weaker side (8/55) likewise; dropping Received
	// (7/27) and Received plus Date (7/28) lose; /24 and /16 network
	// tokens of Received IPs (3 seeds: 17/73 against 17/70) do not help.
	// 5 x 5-fold (defaults 26/121 at 0.9, 17/155 at 0.99): meta tokens
	// (text length, '!' count, capitals share, part layout) never pass
	// MinDev and change nothing; weighing a token's counts as if both
	// classes had been learned equally often (ham-only words then count
	// less, as 3 ham of 2948 is weaker evidence than 3 spam of 1307) cuts
	// FN to 39-69 but raises FP to 58-136 at every MinDev (0.4-0.46) and
	// RobX (0.5, 0.55) tried. SpamBayes-style tiling of words and word
	// pairs at scoring time (strongest first, each word position used by
	// one clue, so a pair and its words are not counted together; 5-fold
	// seed 0): 5/23 at 0.9 against 6/20, 3/30 at 0.99 against 3/29.
	//
	// Fourth session. A sender history (From address and domain counts in
	// the other folds) cannot help: of the 26 errors of seed 0 at 0.9 (6
	// FP, 20 FN) one came from an address learned before (a spam, from an
	// address once learned as spam, that scored 0.0 all the same) and
	// seven from a learned domain: freemail, an ISP, amazon.com, and two
	// learned once or twice as spam. The three ham among the ten highest
	// in every shuffle (1.0 in seed 0) are solicited vendor mail in
	// hard_ham (CuteFTP, Netscape, Espial); the spam that score 0.0 are
	// newsletters with no spam wording. Byte 4-grams as Fisher tokens:
	// 49/59 at 0.9, 47/83 at 0.999, FP doubled.
	//
	// Adopted: the gram model (grams.go), a logistic regression on the
	// byte 4-grams of the first 2,000 raw bytes, its logit added to
	// Fisher's. Prototyped first on its own (5 x 5-fold, Fisher alone
	// 26/121 at 0.9, 17/154 at 0.99): alone it is far weaker (223 FN with
	// the threshold at 6 FP a run, Fisher 103); blended it moved the whole
	// FP/FN curve down; 2,500 or 3,000 bytes, 2^20 or 2^22 weights, three passes or
	// rate 0.02 did no better than 2,000 bytes, 2^18, two passes at 0.01;
	// 1,000-1,500 bytes a little worse; decoded header and text instead of
	// raw bytes, or adding Fisher's tokens to its features, no better.
	// Measured by the chance that a holdout of the hidden one's size meets
	// the target (holdoutChance), the best cutoff went from 0.34
	// (Fisher alone) to 0.42-0.50 across prototypes and hash functions
	// (xxhash of the 4 bytes and the multiplicative hash kept differ by a
	// few messages either way). As kept (5 x 5-fold): 25/97 and 0.47 at
	// 0.99; gram_weight 2 at best 0.44 (0.8, 31/84), 4 at best 0.45
	// (0.999, 23/107). Adding the 4-grams of the first 1,000 or 2,000 body
	// bytes (hashed apart from the others): worse, 32/101 and 32/104 at
	// 0.99, best chance 0.42 and 0.41.
	//
	// Fifth session (5 x 5-fold, defaults 25/97 and 0.47 at 0.99): a
	// Fisher clip of 8, 12 or 18 instead of 30, at weights 2 and 3 (best
	// chances 0.45, 0.46, 0.44, 0.45, 0.44, 0.47); averaged SGD (the
	// weights averaged over the last pass of two, the last three of five
	// at rate 0.01, or the last four of eight at 0.03, weights 2-4): best
	// chances 0.42-0.48, the same plateau. The errors left are the same
	// few messages in every shuffle: solicited vendor mail in hard_ham
	// (Netscape, Espial, CuteFTP) that reads as spam to every model tried,
	// and newsletters labelled spam with no spam wording.
	// Also this session, with a prototype harness outside the tree (same
	// measure, chance computed exactly from two binomials): a two-class
	// PPM-C compression model (Bratko et al. 2006; raw 2-8k bytes or
	// decoded text, orders 3-6, static or adaptive) is weak alone (FN
	// 95-240 a run at 5 FP a run, against about 19), and blended reaches
	// 0.49-0.51 at best (0.514 the in-sample best of some 70 settings), a
	// move along the curve, at 400-900 msgs/s and about 96 MiB; MinHash
	// near-duplicates of word 3-shingles change nothing (no error has a
	// training neighbour at Jaccard 0.3 or above, and every message that
	// has one at 0.5 is already right); extra gram passes over messages
	// within a margin of 2-4 logits (relaxed online SVM style): 0.44-0.50.
	// The spam missed are mostly mail that came through real lists
	// (cypherpunks, Mailman), whose headers read as ham.
	//
	// Sixth session, with a prototype harness outside the tree (5 x 5-fold,
	// seeds 0-4, defaults 25/97 and 0.47 at 0.99; "fine" below is the best
	// chance over cutoffs sigmoid(t), t = -4..14 by 0.25, computed exactly
	// from two binomials: 0.485 for the defaults). A learned second-level
	// combiner (stacking): a logistic regression (Newton, L2) over Fisher's
	// logit, the gram z, Fisher's logits of the header and of the body
	// tokens alone, list headers present, Precedence bulk/list, HTML-only,
	// clues used, share of unknown tokens, token count, and the list flag
	// times the body and header logits and z, trained on features computed
	// out of fold inside each outer training fold (Fisher exactly leave-one-
	// out, the message's learned weight subtracted; z from an inner 5-fold,
	// or by progressive validation in the first pass, no different). It
	// misses far fewer spam at 5-10 FP a run (pooled FN 167 against 308 at
	// 10 FP) but where the target is decided, 20-30 FP over five runs, it
	// moves little: fine 0.49-0.54 over ten variants (L2 1-10, logits
	// clipped to 8, ham weighted 3-10 in the fit, spam and ham clue counts)
	// against 0.485; without the interactions 0.41-0.49; with a MinDev 0.3
	// Fisher logit 0.44. On fresh shuffles (seeds 5-9, where the defaults
	// themselves fall to 39/93 at 0.99 and 0.31) 0.35-0.36 against 0.31;
	// over seeds 0-9 0.42-0.43 against 0.39: a steady +0.04, short of what
	// a second model and a batch refit would have to earn. Learning only a
	// correction on top of the blend (its logit as offset) does worse, 0.44-
	// 0.47, and boosted trees from it worse still (0.24): left out one at a
	// time the blend is sure of all but some 28 messages a fold, and these
	// fit those few. Ham weighted 1.5, 2 or 3 in the gram SGD: 0.47-0.48, a
	// move along the curve. A length-normalised multinomial NB on the same
	// tokens (they are distinct per message, so a TF transform changes
	// nothing, and two-class complement NB is the same linear model):
	// blended at 0.5 0.41, stacked 0.39. The floor: of the defaults' 65 FP
	// over ten shuffles, 39 are four hard_ham (Netscape, Espial, CuteFTP, a
	// Starflung renewal reminder) that fail in 9-10 of 10 under every model,
	// the stacked ones included; four in 2948 is 0.14% on its own. Whether
	// the From domain appears among the Received hosts does not tell them
	// apart (39% of hard_ham without list headers, 38% of such spam).
	// Nine spam are missed in all ten shuffles, mostly vendor-style
	// newsletters rather than list-borne mail.
	//
	// Seventh session, prototype harness outside the tree (5-fold, seeds
	// 0-9, chance exact from two binomials; defaults then 64/190 and 0.38
	// at 0.99, best 0.39). Header-shape tokens (Message-ID local part and
	// domain shapes, boundary shape, Date format, timezone, mailer family
	// and shape, top-level transfer encoding, Received hops bucketed, To
	// empty/undisclosed/multiple, Message-ID domain against the From domain
	// and the Received hosts, List-Unsubscribe against the From domain) as
	// Fisher tokens: 62/188, best 0.41; as gram features (1 or 4 copies)
	// 0.40-0.41; both 0.41. Personalisation (the recipient's address or
	// name in the body, a greeting): no change. The recipient's sub-address
	// tag naming the sender (jm-cuteftp@, ler+foxsports@: 174 ham, 6 spam)
	// as a token or gram feature: 0.39-0.40; Fisher stays sure of the
	// vendor mail it marks. Gates and minimums over the two models (spam
	// only when z or Fisher's logit passes a bar, min of the two, z
	// clipped): 0.27-0.34, all worse. The gram model learning each message
	// as often as the rounds weighed it: 0.38. More train-on-error rounds
	// (kept): 8 rounds 0.42, 8 at margin 0.001 0.42, 16 at 0.01 0.41, 16
	// at 0.001 0.43 (61/174), 8 at margin 0.5 (TUNE proper) 0.39. Over ten
	// more shuffles (seeds 10-19) 16 at 0.001 gave 62/191 and 0.40 against
	// 65/198 and 0.36: a steady +0.04, at 3.6 times the bulk learning time.
	//
	// Twelfth session, prototype harness outside the tree (5-fold, seeds
	// 0-9, the defaults measured in the same runs: 61/176 at 0.99; chance
	// exact from two binomials, at 0.99 and best over cutoffs sigmoid(t),
	// t = -8..14 by 0.25: 0.43 and 0.43). Training-set editing for label
	// noise: each message of the outer training fold scored leave-one-out
	// by Fisher on plain counts (its own counts subtracted, before any
	// round); on all of TRAIN 30 are beyond 0.9 on the wrong side, 20 spam
	// (the newsletters) and 10 ham (8 hard_ham vendor mail), about 24 a
	// fold. Kept once but never reinforced by the rounds: 85/197, 0.26;
	// both classes dropped (seed 0 alone) 9/21 against 5/14; only the spam
	// dropped (about 16 a fold): 51/257 at 0.99 and 0.29, best 0.45 at
	// cutoff 0.047 (62/161), an in-sample pick on a shifted scale; only
	// spam beyond 0.99 dropped: 54/253, best 0.41. The rounds' weight on
	// exactly these messages is what keeps their look-alikes apart; they
	// are hard, not mislabelled. Nor can editing reach the cypherpunks
	// case: of the 112 TRAIN spam relayed by that list, one scores wrong
	// left out. The rounds capped at weight 4 (of up to 17): 63/184, 0.40.
	// OSB/Winnow (CRM114 style): the words and orthogonal sparse bigrams
	// (distance 1-4, a 5-word window) of the decoded header fields (but
	// Received, Date and the site's) and of the first 1,500 words of the
	// text, hashed to 2^20 (about 1,200 distinct a message); balanced
	// Winnow in the log domain (promote 1.23, demote 0.83, thick threshold
	// 0.1 on the mean log ratio, three passes). Alone 261/241 at its best
	// cutoff; its score added to the blend at 5, 10, 20, 40 times: best
	// 0.44, 0.44, 0.43, 0.42 (61/171 at 0.99 with 5), on the same curve.
	// A logistic regression on those features (SGD, rate 0.002, two passes;
	// seed 0 alone, defaults 5/14 and 0.58 there) is weak alone (best
	// 40/32) and lowers the blend as a third member (weights 1-3: best
	// 0.50, 0.49, 0.41) or in the gram model's place (0.35, 0.30, 0.26).
	// None came near the +0.06 asked of a change, so nothing was kept.
	//
	// Fourteenth session, prototype harness outside the tree (5-fold, the
	// defaults measured in the same runs; chance by holdoutChance at 0.99,
	// "best" exact from two binomials over cutoffs sigmoid(t), t = -8..14
	// by 0.25).
	// A batch linear model on the tokenizer's keys (which already hold its
	// word pairs), solved exactly by dual coordinate descent (Hsieh et al.
	// 2008 for the L2-loss SVM; Yu, Huang and Lin 2011 for L2-regularised
	// logistic regression), on L2-normalised binary or log-IDF vectors
	// with a bias feature, vocabulary from the training fold, its margin
	// times a scale added to the blend's logit. Seeds 0-1 (defaults 11/36
	// at 0.99, chance 0.47, exact best 0.486): alone it stays weak however
	// well fitted (LR at C 100 16/172 at 0.99; the SVM, margin times 2,
	// 12-14/111-167 at 0.7, best chance 0.02-0.08); blended, C 1, 10, 100
	// and scales 0.25-2 give best 0.46-0.49, the SVM at scales 4, 8, 16
	// 0.492, 0.494, 0.455, LR at C 100 scaled 4 or 8 0.38 and 0.27 (FP
	// rises), log-IDF no better (SVM
	// 0.45-0.46, LR 0.27-0.39). Since no C helps, C was not chosen by inner
	// CV. Over seeds 0-9 (defaults 61/176 at 0.99, 0.43, exact best 0.43):
	// the SVM at C 1 scaled 8 64/164, 0.43, best 0.44; LR at C 10 scaled 1
	// 63/173, 0.42, best 0.43. Gram-feature variants, same runs: the
	// 4-grams of the last 2,000 bytes too, hashed apart (footers): 61/178,
	// 0.42, best 0.44 at 0.78 (seeds 0-2: best 0.50 against 0.49); 6-grams
	// alongside the 4-grams: 63/163, 0.43, best 0.44 (seeds 0-2 0.52
	// against 0.49, not borne out); 3- and 5-grams alongside: 87/150,
	// 0.30; on seeds 0-2 alone 3-grams 0.42 and 5-grams 0.43 against 0.49.
	// None came within +0.04 of the defaults, so nothing was kept and the
	// fresh seeds 10-19 were not needed.
	add("rounds 2, margin 0.01 (before session 7)", func(c *cvSetup) { c.rounds, c.margin = 2, 0.01 })
	add("rounds 8", func(c *cvSetup) { c.rounds = 8 })
	add("gram_weight 0 (Fisher alone)", func(c *cvSetup) { c.gramWeight = 0 })
	add("gram_weight 2", func(c *cvSetup) { c.gramWeight = 2 })
	add("gram_weight 4", func(c *cvSetup) { c.gramWeight = 4 })
	add("without ShareAddr and HdrOrder (before issue 7)", func(c *cvSetup) { c.opt.ShareAddr, c.opt.HdrOrder = false, false })
	add("without ShareAddr", func(c *cvSetup) { c.opt.ShareAddr = false })
	add("without HdrOrder", func(c *cvSetup) { c.opt.HdrOrder = false })
	return out
}
