package pipeline

import (
	"context"

	"github.com/portcullis-mta/portcullis/rules"
)

type factsKey struct{}

// WithFacts returns a context carrying session facts that sdk.Request does
// not hold (conn.pregreet, mail.params in rules). The session sets it on
// the context it passes to Run.
func WithFacts(ctx context.Context, f rules.Facts) context.Context {
	return context.WithValue(ctx, factsKey{}, f)
}

func factsFrom(ctx context.Context) rules.Facts {
	f, _ := ctx.Value(factsKey{}).(rules.Facts)
	return f
}
