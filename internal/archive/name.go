package archive

import (
	"strconv"
	"strings"
	"time"
)

// ObjectSuffix ends the name of every backup archive.
const ObjectSuffix = ".tar.gz"

// maxMillisDigits bounds the milliseconds in a name: 15 digits reach the year 33658.
const maxMillisDigits = 15

// ObjectName is the key a backup that started at millis (Unix milliseconds) is stored
// under: "<prefix>-<millis>.tar.gz", e.g. metadata-backup-1700000000000.tar.gz.
func ObjectName(prefix string, millis int64) string {
	return prefix + "-" + strconv.FormatInt(millis, 10) + ObjectSuffix
}

// ParseObjectName returns the start time that key carries when key is exactly the name
// ObjectName gives a backup of prefix, and false for any other key. The match is strict:
// "<prefix>-<digits>.tar.gz" with canonical digits (no sign, no leading zero), so the
// archives of a prefix that extends this one ("metadata-backup-eu-1700000000000.tar.gz"
// under prefix "metadata-backup") never parse as this prefix's: what follows "<prefix>-" in
// them holds another dash.
func ParseObjectName(prefix, key string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(key, prefix+"-")
	if !ok {
		return time.Time{}, false
	}
	digits, ok := strings.CutSuffix(rest, ObjectSuffix)
	if !ok || digits == "" || len(digits) > maxMillisDigits || digits[0] == '0' && digits != "0" {
		return time.Time{}, false
	}
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return time.Time{}, false
		}
	}
	ms, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms).UTC(), true
}

// IsLongerPrefixName tells whether key, found under prefix, is the archive name of another
// backup prefix that starts with this one plus a dash: "<prefix>-<more>-<millis>.tar.gz",
// such as metadata-backup-eu-1700000000000.tar.gz under metadata-backup. Listing a bucket by
// prefix returns those too; they belong to that other deployment.
func IsLongerPrefixName(prefix, key string) bool {
	rest, ok := strings.CutPrefix(key, prefix+"-")
	if !ok {
		return false
	}
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 {
		return false
	}
	_, ok = ParseObjectName(rest[:i], rest)
	return ok
}
