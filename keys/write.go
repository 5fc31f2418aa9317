package keys

import "io"

// WriteAndClose writes data to w and closes w, then the writers under it
// (outer, innermost first): how a backend seals a data key into an
// encrypted, armored message.
func WriteAndClose(data []byte, w io.WriteCloser, outer ...io.Closer) error {
	if _, err := w.Write(data); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	for _, c := range outer {
		if err := c.Close(); err != nil {
			return err
		}
	}
	return nil
}
