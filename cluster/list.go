package cluster

import (
	"fmt"
	"strconv"
	"strings"
)

// Job list pages: newest first, DefaultPageSize jobs unless asked (at most
// MaxPageSize). A cursor names the last job of a page by its creation time
// and ID; the next page starts right after it, so walking the cursors lists
// every job once even while jobs are added (they are newer, so they come
// before the first cursor) or removed (they are skipped).
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// ListQuery selects a page of jobs.
type ListQuery struct {
	Limit  int      // 0 = DefaultPageSize
	Cursor string   // "" = the newest
	State  JobState // "" = every state
}

// JobPage is one page: job records (shared, immutable) and the cursor of
// the next page ("" when this is the last).
type JobPage struct {
	Jobs []*Job
	Next string
}

// List returns one page of jobs.
func (s *State) List(q ListQuery) (JobPage, error) {
	limit := q.Limit
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 0 || limit > MaxPageSize {
		return JobPage{}, Invalid(fmt.Errorf("limit %d: want 1 to %d", q.Limit, MaxPageSize))
	}
	tree := s.ix.created
	if q.State != "" {
		t, ok := s.ix.byState[q.State]
		if !ok {
			return JobPage{}, Invalid(fmt.Errorf("state %q: want one of %v", q.State, allJobStates))
		}
		tree = t
	}
	var page JobPage
	visit := func(k jobKey) bool {
		if len(page.Jobs) == limit {
			page.Next = encodeCursor(keyOfJob(page.Jobs[limit-1]))
			return false
		}
		page.Jobs = append(page.Jobs, s.job(k.id))
		return true
	}
	if q.Cursor == "" {
		tree.Descend(visit)
		return page, nil
	}
	after, err := decodeCursor(q.Cursor)
	if err != nil {
		return JobPage{}, err
	}
	tree.DescendLessOrEqual(after, func(k jobKey) bool {
		if k == after {
			return true
		}
		return visit(k)
	})
	return page, nil
}

func keyOfJob(j *Job) jobKey { return keyOf(j.CreatedAt, j.ID) }

func encodeCursor(k jobKey) string { return strconv.FormatInt(k.at, 36) + "." + k.id }

func decodeCursor(c string) (jobKey, error) {
	at, id, ok := strings.Cut(c, ".")
	n, err := strconv.ParseInt(at, 36, 64)
	if !ok || err != nil || !ValidJobID(id) {
		return jobKey{}, Invalid(fmt.Errorf("malformed cursor %q", c))
	}
	return jobKey{at: n, id: id}, nil
}
