package keystore

// NewDirStorage is the Storage of the keystore directory dir, for the
// external tests of package keystore (keystore_test), which run the
// storagetest suite (importing keystore, so not runnable from inside).
func NewDirStorage(dir string) Storage { return newDirStorage(dir) }

// DirOf returns the directory of a Storage NewDirStorage made.
func DirOf(s Storage) string { return s.(*dirStorage).dir }
