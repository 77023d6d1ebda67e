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

type replyFormKey struct{}

// WithReplyForm returns a context carrying the session's form of a
// decision's reply: the reply line it sends for d ("" for none). A rule's
// template is not what goes on the wire: the session makes it ASCII and
// cuts it to one line, uses its default when the rule has none, and
// answers 421 to a tempfail before the greeting. The decision line logs
// this form, so that it shows the reply as sent (README: "a refusal logs
// the reply as sent"); without one, the rule's reply as it was made.
func WithReplyForm(ctx context.Context, form func(d *Decision) string) context.Context {
	return context.WithValue(ctx, replyFormKey{}, form)
}

func replyFormFrom(ctx context.Context) func(*Decision) string {
	f, _ := ctx.Value(replyFormKey{}).(func(*Decision) string)
	return f
}
