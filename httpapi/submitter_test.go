package httpapi

import (
	"context"
	"strings"
	"testing"
)

func TestSubmitterIdentity(t *testing.T) {
	s := newTokenSet("tok-one-secret", "tok-two-secret")
	a, b := s.submitter("Bearer tok-one-secret"), s.submitter("Bearer tok-two-secret")
	if !strings.HasPrefix(a, "token:") || a == b || a != s.submitter("bearer  tok-one-secret ") {
		t.Fatalf("submitters %q %q", a, b)
	}
	if strings.Contains(a, "secret") || s.submitter("Bearer nope") != "" {
		t.Fatalf("bad submitter %q", a)
	}
	if s := submitterFrom(context.Background()); s.Tokens || s.ID != "" {
		t.Fatal("a submitter without tokens")
	}
	if s := submitterFrom(withSubmitter(context.Background(), Submitter{ID: a, Tokens: true})); !s.Tokens || s.ID != a {
		t.Fatal("submitter lost in the context")
	}
}
