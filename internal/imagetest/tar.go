package imagetest

import (
	"archive/tar"
	"bytes"
	"path"
	"strings"
	"time"
)

// File is one tar entry.
type File struct {
	Name string
	// Type is a tar type flag (tar.TypeReg, TypeDir, TypeSymlink, TypeLink,
	// TypeChar, TypeBlock, TypeFifo); 0 means tar.TypeReg.
	Type byte
	// Mode is the permission and special bits (0o4755...). 0 means the
	// usual default: 0o644 for files, 0o755 for directories, 0o777 for
	// symlinks. ModeNone gives a real 0o000.
	Mode     int64
	Uid, Gid int
	// Content is a regular file's data.
	Content []byte
	// Linkname is the target of a symlink or hard link.
	Linkname           string
	Devmajor, Devminor int64
	// Xattrs are written as PAX SCHILY.xattr.NAME records, the way
	// GNU tar and Docker store extended attributes.
	Xattrs map[string]string
}

// ModeNone asks for permission bits 0o000 (a zero Mode means the default).
const ModeNone int64 = -1

// modTime is every entry's mtime, fixed so that digests are stable.
var modTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Tar writes the files in order, verbatim: names such as "../x" or
// "/etc/x", links pointing anywhere, duplicates and entries beneath
// symlinks are kept as they are, because hostile layers are built with it.
func Tar(files []File) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		typ := f.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{
			Typeflag: typ,
			Name:     f.Name,
			Linkname: f.Linkname,
			Mode:     mode(f.Mode, typ),
			Uid:      f.Uid,
			Gid:      f.Gid,
			ModTime:  modTime,
			Devmajor: f.Devmajor,
			Devminor: f.Devminor,
		}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(f.Content))
		}
		if len(f.Xattrs) > 0 {
			hdr.Format = tar.FormatPAX
			hdr.PAXRecords = map[string]string{}
			for k, v := range f.Xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		// Writing to a bytes.Buffer fails only on headers archive/tar
		// cannot encode, which is a mistake in the test's File.
		if err := tw.WriteHeader(hdr); err != nil {
			panic("imagetest: tar header " + f.Name + ": " + err.Error())
		}
		if typ == tar.TypeReg {
			tw.Write(f.Content) //nolint:errcheck // bytes.Buffer
		}
	}
	if err := tw.Close(); err != nil {
		panic("imagetest: close tar: " + err.Error())
	}
	return buf.Bytes()
}

func mode(m int64, typ byte) int64 {
	switch {
	case m == ModeNone:
		return 0
	case m != 0:
		return m
	case typ == tar.TypeDir:
		return 0o755
	case typ == tar.TypeSymlink:
		return 0o777
	default:
		return 0o644
	}
}

// Dir is a directory entry with mode 0o755; its name gets the trailing
// slash tar writers put on directories.
func Dir(name string) File {
	if !strings.HasSuffix(name, "/") {
		name += "/"
	}
	return File{Name: name, Type: tar.TypeDir}
}

// Reg is a regular file with mode 0o644 (or the given mode).
func Reg(name, content string, mode ...int64) File {
	f := File{Name: name, Type: tar.TypeReg, Content: []byte(content)}
	if len(mode) > 0 {
		f.Mode = mode[0]
	}
	return f
}

// Symlink is a symbolic link name → target.
func Symlink(name, target string) File {
	return File{Name: name, Type: tar.TypeSymlink, Linkname: target}
}

// Whiteout deletes name (a path in a lower layer) in an overlay-style
// layer: an empty file ".wh.BASE" beside it.
func Whiteout(name string) File {
	dir, base := path.Split(strings.TrimSuffix(name, "/"))
	return File{Name: dir + ".wh." + base}
}

// OpaqueDir hides everything lower layers put in dir: the marker
// "DIR/.wh..wh..opq".
func OpaqueDir(dir string) File {
	return File{Name: strings.TrimSuffix(dir, "/") + "/.wh..wh..opq"}
}
