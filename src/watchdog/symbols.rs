//! Names for the code addresses of a watchdog report, in the shape of glibc's
//! `backtrace_symbols` (`file(function+0xoffset) [0xaddress]`).
//!
//! glibc names only exported symbols, and a Rust executable exports almost none, so the
//! executable's own functions come from its ELF symbol table (`.symtab`, read once from
//! `/proc/self/exe` on the first report) and are demangled; addresses in shared libraries
//! (libc) fall back to `dladdr`. An address nothing names is still printed, as
//! `file(+0xoffset)`. This runs on the reporter thread, never in the signal handler.

use std::ffi::CStr;
use std::os::unix::fs::FileExt;
use std::sync::OnceLock;

/// A function of the executable: its link-time address and size, and its name's offset in
/// the string table.
struct Func {
    start: u64,
    size: u64,
    name: u32,
}

struct Table {
    /// Run-time address minus link-time address (the PIE load bias).
    bias: usize,
    /// Sorted by `start`.
    funcs: Vec<Func>,
    strtab: Vec<u8>,
    file: String,
}

static TABLE: OnceLock<Option<Table>> = OnceLock::new();

/// One report line for `addr`. A return address (`is_return`: any frame but the
/// interrupted one) is looked up one byte back, inside the call that returns there.
pub fn describe(addr: usize, is_return: bool) -> String {
    let probe = if is_return {
        addr.saturating_sub(1)
    } else {
        addr
    };
    if let Some(table) = TABLE.get_or_init(load).as_ref() {
        if let Some((name, start)) = table.find(probe) {
            return format!(
                "{}({}+0x{:x}) [0x{:x}]",
                table.file,
                name,
                addr - start,
                addr
            );
        }
    }
    describe_dynamic(addr, probe)
}

impl Table {
    /// The function holding `addr` and its run-time start.
    fn find(&self, addr: usize) -> Option<(String, usize)> {
        let link = addr.checked_sub(self.bias)? as u64;
        let i = self
            .funcs
            .partition_point(|f| f.start <= link)
            .checked_sub(1)?;
        let f = self.funcs.get(i)?;
        if link >= f.start.saturating_add(f.size.max(1)) {
            return None;
        }
        let raw = self.strtab.get(f.name as usize..)?;
        let raw = CStr::from_bytes_until_nul(raw).ok()?.to_str().ok()?;
        Some((
            format!("{:#}", rustc_demangle::demangle(raw)),
            f.start as usize + self.bias,
        ))
    }
}

/// What the dynamic linker knows of `addr` (shared libraries' exported symbols).
fn describe_dynamic(addr: usize, probe: usize) -> String {
    // SAFETY: a zeroed Dl_info is valid; dladdr fills it or returns 0.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is valid for the call; the address is only compared, not read.
    if unsafe { libc::dladdr(probe as *const libc::c_void, &mut info) } == 0 {
        return format!("[0x{addr:x}]");
    }
    let file = if info.dli_fname.is_null() {
        String::new()
    } else {
        // SAFETY: dladdr's strings live as long as the object stays loaded.
        let path = unsafe { CStr::from_ptr(info.dli_fname) }.to_string_lossy();
        path.rsplit('/').next().unwrap_or_default().to_string()
    };
    if info.dli_sname.is_null() {
        let off = addr.wrapping_sub(info.dli_fbase as usize);
        return format!("{file}(+0x{off:x}) [0x{addr:x}]");
    }
    // SAFETY: as above.
    let name = unsafe { CStr::from_ptr(info.dli_sname) }.to_string_lossy();
    let off = addr.wrapping_sub(info.dli_saddr as usize);
    format!(
        "{file}({:#}+0x{off:x}) [0x{addr:x}]",
        rustc_demangle::demangle(&name)
    )
}

/// Reads the executable's function symbols, or `None` (a stripped binary, another format):
/// reports then name what `dladdr` can.
fn load() -> Option<Table> {
    let file = std::fs::File::open("/proc/self/exe").ok()?;
    let name = std::fs::read_link("/proc/self/exe")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let elf = Elf { file: &file };
    let header = elf.read(0, 64)?;
    // ELF64, little-endian.
    if header.get(..4)? != b"\x7fELF" || *header.get(4)? != 2 || *header.get(5)? != 1 {
        return None;
    }
    let shoff = le64(&header, 0x28)?;
    let shentsize = le16(&header, 0x3a)? as u64;
    let shnum = le16(&header, 0x3c)? as u64;
    let sections = elf.read(shoff, (shentsize * shnum) as usize)?;
    let section = |i: u64| sections.get((i * shentsize) as usize..((i + 1) * shentsize) as usize);
    const SHT_SYMTAB: u32 = 2;
    let symtab = (0..shnum)
        .filter_map(section)
        .find(|s| le32(s, 4) == Some(SHT_SYMTAB))?;
    let strtab = section(le32(symtab, 0x28)? as u64)?;
    let strings = elf.read(le64(strtab, 0x18)?, le64(strtab, 0x20)? as usize)?;
    let symbols = elf.read(le64(symtab, 0x18)?, le64(symtab, 0x20)? as usize)?;
    const STT_FUNC: u8 = 2;
    let mut funcs: Vec<Func> = symbols
        .chunks_exact(24)
        .filter(|s| s.get(4).is_some_and(|info| info & 0xf == STT_FUNC))
        .filter_map(|s| {
            Some(Func {
                name: le32(s, 0)?,
                start: le64(s, 8)?,
                size: le64(s, 16)?,
            })
        })
        .filter(|f| f.start != 0)
        .collect();
    funcs.sort_unstable_by_key(|f| f.start);
    Some(Table {
        bias: load_bias(),
        funcs,
        strtab: strings,
        file: name,
    })
}

struct Elf<'a> {
    file: &'a std::fs::File,
}

impl Elf<'_> {
    /// `len` bytes at `offset`; a table larger than `TABLE_BYTES_MAX` is not read.
    fn read(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        const TABLE_BYTES_MAX: usize = 256 << 20;
        if len > TABLE_BYTES_MAX {
            return None;
        }
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, offset).ok()?;
        Some(buf)
    }
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The main program's load bias: the first object `dl_iterate_phdr` reports is the
/// executable itself.
fn load_bias() -> usize {
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: glibc passes a valid info; `data` is the `usize` below.
        unsafe {
            *(data as *mut usize) = (*info).dlpi_addr as usize;
        }
        1
    }
    let mut bias = 0usize;
    // SAFETY: the callback writes only to `bias`, which outlives the call.
    unsafe {
        libc::dl_iterate_phdr(Some(first), (&mut bias as *mut usize).cast());
    }
    bias
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_function_to_find() -> usize {
        std::hint::black_box(7)
    }

    #[test]
    fn names_a_function_of_this_executable() {
        let addr = a_function_to_find as *const () as usize;
        let line = describe(addr + 1, false);
        assert!(
            line.contains("a_function_to_find+0x1"),
            "unexpected symbol line: {line}"
        );
        assert!(line.ends_with(&format!("[0x{:x}]", addr + 1)), "{line}");
    }

    #[test]
    fn names_a_libc_function() {
        let addr = libc::getpid as *const () as usize;
        let line = describe(addr, false);
        assert!(line.contains("getpid"), "unexpected symbol line: {line}");
    }
}
