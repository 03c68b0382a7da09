package restore

import "time"

// Progress is reported by the long stages every few seconds.
type Progress struct {
	// Records processed so far (read from the archive; Apply: handed to the Creator), and
	// Written those sent to ZooKeeper (Apply, Clear).
	Records int64  `json:"records"`
	Written int64  `json:"written,omitempty"`
	Path    string `json:"path,omitempty"`
}

// progressEvery is how often the long stages report progress.
const progressEvery = 2 * time.Second

type ticker struct {
	fn   func(Progress)
	next time.Time
}

func (t *ticker) tick(p Progress) {
	if t.fn == nil {
		return
	}
	if now := time.Now(); now.After(t.next) {
		t.next = now.Add(progressEvery)
		t.fn(p)
	}
}
