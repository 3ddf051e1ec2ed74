package fsx

import "testing"

// Directories on one filesystem share one descriptor: one syncfs each.
func TestOneDescriptorPerFilesystem(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	fs, err := OpenFilesystems(a, b, a)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	if len(fs.dirs) != 1 {
		t.Fatalf("%d descriptors for two directories of one filesystem, want 1", len(fs.dirs))
	}
}
