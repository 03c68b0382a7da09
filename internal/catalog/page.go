package catalog

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"sort"
)

// ErrBadToken is returned by Page for a token it did not issue.
var ErrBadToken = errors.New("invalid page token")

// Page returns up to limit entries after the position token names ("" for the start), and
// the token of the next page ("" when this is the last). A token names the last entry
// returned rather than an offset, so pages stay consistent while new backups arrive at the
// top of the list between requests.
func (s Snapshot) Page(token string, limit int) ([]Backup, string, error) {
	start := 0
	if token != "" {
		after, err := decodeToken(token)
		if err != nil {
			return nil, "", err
		}
		start = sort.Search(len(s.Backups), func(i int) bool {
			return compareKeys(keyOf(s.Backups[i]), after) > 0
		})
	}
	end := min(start+max(limit, 0), len(s.Backups))
	page := s.Backups[start:end]
	if end == len(s.Backups) || len(page) == 0 {
		return page, "", nil
	}
	return page, encodeToken(keyOf(page[len(page)-1])), nil
}

func encodeToken(k sortKey) string {
	b, _ := json.Marshal(k) // a struct of strings, a bool and a time: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(tok string) (sortKey, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) > 4096 {
		return sortKey{}, ErrBadToken
	}
	var k sortKey
	if err := json.Unmarshal(raw, &k); err != nil || k.Name == "" || k.Time.IsZero() {
		return sortKey{}, ErrBadToken
	}
	return k, nil
}
