package engine

// FailConfigWrites makes every config write fail with err until the
// returned function is called.
func FailConfigWrites(err error) (restore func()) {
	failConfigWrite = func(string) error { return err }
	return func() { failConfigWrite = nil }
}

// FailStateWrites makes every state file write fail with err until the
// returned function is called.
func FailStateWrites(err error) (restore func()) {
	failStateWrite = func(string) error { return err }
	return func() { failStateWrite = nil }
}
