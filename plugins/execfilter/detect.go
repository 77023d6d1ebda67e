package execfilter

import (
	"bytes"
	"encoding/binary"
	"path"
	"strings"
)

// Kinds of executable content, as reported in attrs.kinds.
const (
	kindPE     = "pe"     // Windows PE (MZ header and PE signature)
	kindDOS    = "dos"    // MZ without a PE header
	kindELF    = "elf"    // ELF
	kindMachO  = "macho"  // Mach-O, thin or fat
	kindJava   = "java"   // Java class file
	kindMSI    = "msi"    // Windows Installer package, patch or transform (OLE)
	kindLNK    = "lnk"    // Windows shell link
	kindScript = "script" // by content type, extension or "#!"
)

// headSize is how much of a file kindOf may look at.
const headSize = 64 << 10

// kindOf identifies executable content by its bytes (head is the start of
// the file); "" when it is none of the kinds.
func kindOf(head []byte) string {
	switch {
	case len(head) >= 2 && head[0] == 'M' && head[1] == 'Z':
		return mzKind(head)
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		return kindELF
	case isMachO(head):
		return kindMachO
	case bytes.HasPrefix(head, []byte("\xca\xfe\xba\xbe")) && len(head) >= 8:
		if binary.BigEndian.Uint32(head[4:]) < 30 { // fat Mach-O: arch count; Java: version >= 45
			return kindMachO
		}
		return kindJava
	case bytes.HasPrefix(head, []byte("\xca\xfe\xba\xbf")): // FAT_MAGIC_64 (<mach-o/fat.h>), which Java never starts with
		return kindMachO
	case bytes.HasPrefix(head, lnkHeader):
		return kindLNK
	case bytes.HasPrefix(head, oleMagic) && isMSI(head):
		return kindMSI
	case bytes.HasPrefix(head, []byte("#!")):
		return kindScript
	}
	return ""
}

// mzKind tells a PE from a bare DOS program: e_lfanew at 0x3c points at
// "PE\0\0" (Microsoft PE format, "MS-DOS Stub").
func mzKind(head []byte) string {
	if len(head) < 0x40 {
		return ""
	}
	off := binary.LittleEndian.Uint32(head[0x3c:])
	if int64(off)+4 <= int64(len(head)) && bytes.Equal(head[off:off+4], []byte("PE\x00\x00")) {
		return kindPE
	}
	return kindDOS
}

func isMachO(h []byte) bool {
	for _, m := range [][]byte{{0xfe, 0xed, 0xfa, 0xce}, {0xfe, 0xed, 0xfa, 0xcf}, {0xce, 0xfa, 0xed, 0xfe}, {0xcf, 0xfa, 0xed, 0xfe}} {
		if bytes.HasPrefix(h, m) {
			return true
		}
	}
	return false
}

var (
	oleMagic = []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1}
	// MS-SHLLINK 2.1: HeaderSize 0x4c and LinkCLSID 00021401-0000-0000-C000-000000000046.
	lnkHeader = []byte{0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46}
)

// isMSI reads the root storage CLSID of an OLE compound file (MS-CFB 2.2,
// 2.6): Windows Installer packages (000C1084), patches (000C1086) and
// transforms (000C1082) are executables; Word and Excel files are not.
func isMSI(h []byte) bool {
	if len(h) < 0x200 {
		return false
	}
	sectorSize := int64(1) << binary.LittleEndian.Uint16(h[0x1e:])
	dirSect := int64(binary.LittleEndian.Uint32(h[0x30:]))
	if sectorSize < 128 || sectorSize > 4096 || dirSect > 1<<20 {
		return false
	}
	clsid := (dirSect+1)*sectorSize + 0x50
	if clsid+16 > int64(len(h)) {
		return false
	}
	c := h[clsid : clsid+16]
	tail := []byte{0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46}
	return c[0] >= 0x82 && c[0] <= 0x86 && c[0]%2 == 0 && c[1] == 0x10 && c[2] == 0x0c && c[3] == 0 && bytes.Equal(c[4:], tail)
}

// nativeExts are the names an executable of each kind may honestly have.
var nativeExts = map[string][]string{
	kindPE:    {"exe", "dll", "scr", "com", "sys", "cpl", "ocx", "drv", "efi", "msi", "mui", "ax", "pif"},
	kindDOS:   {"exe", "com", "pif"},
	kindELF:   {"", "so", "elf", "bin", "run", "o"},
	kindMachO: {"", "dylib", "bundle", "so", "o"},
	kindJava:  {"class"},
	kindMSI:   {"msi", "msp", "mst"},
	kindLNK:   {"lnk"},
}

// ext is the lower-case extension Windows sees. It drops trailing dots and
// spaces first, as Windows does when it saves a file ("run.js." and
// "run.js " are saved as run.js), so they cannot hide an extension.
func ext(name string) string {
	name = strings.TrimRight(strings.ReplaceAll(name, "\\", "/"), ". ")
	return strings.ToLower(strings.TrimPrefix(path.Ext(name), "."))
}

// nameMismatch reports an executable whose name claims another type (an
// "invoice.pdf" that is a PE).
func nameMismatch(kind, name string) bool {
	exts, ok := nativeExts[kind]
	if !ok || name == "" {
		return false
	}
	e := ext(name)
	for _, x := range exts {
		if e == x {
			return false
		}
	}
	return true
}
