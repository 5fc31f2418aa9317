package formats

import "bytes"

// Sniff answers "is this a SOPS document?" for data, the content of the file
// name, without parsing it: it looks for the MAC SOPS writes in its metadata,
// as each format stores it. It returns the format to load the file with:
// the format of its extension, or Binary for a file with another extension
// that holds a JSON document with SOPS metadata (what the binary store
// writes).
func Sniff(name string, data []byte) (Format, bool) {
	f := FormatForPath(name)
	switch f {
	case YAML:
		return f, bytes.Contains(data, []byte("mac: ENC[")) && bytes.Contains(data, []byte("sops:"))
	case JSON:
		return f, hasJSONMAC(data)
	case Dotenv:
		return f, bytes.Contains(data, []byte("sops_mac=ENC["))
	case INI:
		return f, bytes.Contains(data, []byte("[sops]"))
	}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) && hasJSONMAC(data) {
		return Binary, true
	}
	return f, false
}

// hasJSONMAC reports whether data holds `"mac": "ENC[`, with any spacing
// around the colon (indented or compact JSON).
func hasJSONMAC(data []byte) bool {
	key := []byte(`"mac"`)
	for {
		i := bytes.Index(data, key)
		if i < 0 {
			return false
		}
		data = data[i+len(key):]
		rest := bytes.TrimLeft(data, " \t\r\n")
		if len(rest) > 0 && rest[0] == ':' {
			if bytes.HasPrefix(bytes.TrimLeft(rest[1:], " \t\r\n"), []byte(`"ENC[`)) {
				return true
			}
		}
	}
}
