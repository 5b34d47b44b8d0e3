package acme

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/caddyserver/certmagic"
)

// sharedStorage is certmagic's FileStorage that gives a group read access to
// what Followers read (Options.Group): the certificates folder, and the
// challenges in progress.
type sharedStorage struct {
	*certmagic.FileStorage
	gid int
}

// newStorage returns the storage of s, shared with s's group if any. The
// folder exists afterwards.
func newStorage(s *settled) (certmagic.Storage, error) {
	files := &certmagic.FileStorage{Path: s.storage}
	// Missing parents as usual (/var/lib/wisp: 0755), the folder private.
	if err := os.MkdirAll(filepath.Dir(s.storage), 0o755); err != nil {
		return nil, fmt.Errorf("acme: storage folder: %w", err)
	}
	if err := os.Mkdir(s.storage, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("acme: storage folder: %w", err)
	}
	if s.gid < 0 {
		return files, nil
	}
	if err := share(s.storage, s.gid, 0o750); err != nil {
		return nil, fmt.Errorf("acme: storage folder: %w", err)
	}
	// What an earlier Manager stored without the group.
	certs := filepath.Join(s.storage, "certificates")
	err := filepath.WalkDir(certs, func(name string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			return share(name, s.gid, 0o750)
		case d.Type().IsRegular():
			return share(name, s.gid, 0o640)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("acme: storage folder: sharing with group %d: %w", s.gid, err)
	}
	return &sharedStorage{FileStorage: files, gid: s.gid}, nil
}

// Store stores as FileStorage does (a new file renamed into place), then
// opens the file and the folders down to it to the group if Followers read
// it.
func (s *sharedStorage) Store(ctx context.Context, key string, value []byte) error {
	if err := s.FileStorage.Store(ctx, key, value); err != nil {
		return err
	}
	if !followersRead(key) {
		return nil
	}
	dir := s.Path
	for part := range strings.SplitSeq(path.Dir(key), "/") {
		dir = filepath.Join(dir, part)
		if err := share(dir, s.gid, 0o750); err != nil {
			return err
		}
	}
	return share(s.Filename(key), s.gid, 0o640)
}

// followersRead tells whether a Follower reads the storage key: a site's
// certificate files, or a challenge in progress.
func followersRead(key string) bool {
	return strings.HasPrefix(key, "certificates/") ||
		(strings.HasPrefix(key, "acme/") && strings.Contains(key, "/challenge_tokens/"))
}

func share(name string, gid int, mode os.FileMode) error {
	if err := os.Lchown(name, -1, gid); err != nil {
		return err
	}
	return os.Chmod(name, mode)
}
