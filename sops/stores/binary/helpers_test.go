package binary

func newTestStore() *Store { return New(-1) }
