package dotenv

func newTestStore() *Store { return New() }
