package ini

func newTestStore() *Store { return New() }
