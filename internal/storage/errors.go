package storage

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// opError gives every error of this package one shape, "<op> <url>: <kind>: <cause>", with
// kind (one of the sentinels, or nil) and cause both in the chain for errors.Is and As.
func opError(op, url string, kind, cause error) error {
	if strings.ContainsFunc(url, unicode.IsControl) { // from a rejected key
		url = strconv.Quote(url)
	}
	switch {
	case kind != nil && cause != nil:
		return fmt.Errorf("%s %s: %w: %w", op, url, kind, cause)
	case kind != nil:
		return fmt.Errorf("%s %s: %w", op, url, kind)
	default:
		return fmt.Errorf("%s %s: %w", op, url, cause)
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
