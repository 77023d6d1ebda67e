package cfgval

import (
	"errors"
	"fmt"
	"strings"
)

// UnknownKey is the error for a key of a config map that the stage does
// not know; known lists the keys it does, in the order the docs give them:
//
//	unknown key "lsits" (want lists, headers, score) (did you mean "lists"?)
//
// The guess is the nearest known key within two edits, ignoring case, and
// is left out when nothing is that near.
func UnknownKey(key string, known []string) error {
	err := fmt.Sprintf("unknown key %q (want %s)", key, strings.Join(known, ", "))
	if guess := nearest(key, known); guess != "" {
		err += fmt.Sprintf(" (did you mean %q?)", guess)
	}
	return errors.New(err)
}

// Nearest is the known name a misspelt key most likely meant: the first of
// known fewest edits from key (ignoring case), if that is at most two and
// fewer than key's length (so that "x" suggests nothing), else "".
func Nearest(key string, known []string) string { return nearest(key, known) }

func nearest(key string, known []string) string {
	k := []rune(strings.ToLower(key))
	best, bestD := "", min(3, len(k))
	for _, c := range known {
		if d := distance(k, []rune(strings.ToLower(c))); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance: the fewest insertions, deletions
// and substitutions that turn a into b.
func distance(a, b []rune) int {
	row := make([]int, len(b)+1)
	for j := range row {
		row[j] = j
	}
	for i := range a {
		prev := row[0] // row[j] of the previous pass, before it is overwritten
		row[0] = i + 1
		for j := range b {
			cost := 1
			if a[i] == b[j] {
				cost = 0
			}
			prev, row[j+1] = row[j+1], min(row[j+1]+1, row[j]+1, prev+cost)
		}
	}
	return row[len(b)]
}
