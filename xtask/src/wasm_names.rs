//! Shorter import and export names for the npm package: wasm-bindgen names each JavaScript
//! import `__wbg_NAME_HASH`, and the closure trampolines it exports carry Rust's symbol hash
//! (`..._invoke__hHASH`), sixteen hex digits that gzip cannot compress, once in the module and
//! once in the JS glue. Dropping the hashes (keeping a number where two names would then be
//! the same, such as the several `new`s) takes about 2.3 KiB off the gzipped package. The
//! names are only the contract between the module and its own glue, so both are rewritten
//! together, right after `wasm-bindgen` wrote them.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{bail, Context as _, Result};

/// The prefix of wasm-bindgen's generated import names.
const PREFIX: &str = "__wbg_";

/// Renames the hashed imports and exports of the module `wasm`, and every mention of them in
/// the glue files `glue` (JavaScript and TypeScript declarations, of any wasm-bindgen target).
pub(crate) fn shorten(wasm: &Path, glue: &[&Path]) -> Result<()> {
    let module = fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let names = short_names(&names(&module)?);
    fs::write(wasm, rename(&module, &names)?)?;
    for file in glue {
        let text =
            fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        fs::write(file, rename_identifiers(&text, &names))?;
    }
    Ok(())
}

/// `__wbg_NAME_0123456789abcdef` -> `__wbg_NAME` and `NAME__h0123456789abcdef_18` ->
/// `NAME_18`, numbered (`__wbg_NAME_1`, ...) when two would be the same; names without a hash
/// are left alone.
fn short_names(names: &[String]) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut taken: Vec<String> = names.to_vec();
    for name in names {
        let Some(base) = without_hash(name) else {
            continue;
        };
        let mut short = base.clone();
        let mut n = 0;
        while taken.contains(&short) {
            n += 1;
            short = format!("{base}_{n}");
        }
        taken.push(short.clone());
        map.insert(name.clone(), short);
    }
    map
}

/// The name without its hash: `__wbg_NAME_HASH` (wasm-bindgen's imports) or `...__hHASH...`
/// (Rust's symbol hash, in the closure trampolines' export names).
fn without_hash(name: &str) -> Option<String> {
    let is_hash = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(rest) = name.strip_prefix(PREFIX) {
        let (base, hash) = rest.rsplit_once('_')?;
        return (!base.is_empty() && is_hash(hash)).then(|| format!("{PREFIX}{base}"));
    }
    let at = name.find("__h")?;
    let hash = name.get(at + 3..at + 19)?;
    let after = &name[at + 19..];
    (at > 0 && is_hash(hash) && (after.is_empty() || after.starts_with('_')))
        .then(|| format!("{}{after}", &name[..at]))
}

/// Replaces whole identifiers (`[A-Za-z0-9_$]` runs) found in `names`.
fn rename_identifiers(text: &str, names: &BTreeMap<String, String>) -> String {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_ident) {
        out.push_str(&rest[..start]);
        let word = &rest[start..];
        let end = word.find(|c: char| !is_ident(c)).unwrap_or(word.len());
        let ident = &word[..end];
        out.push_str(names.get(ident).map_or(ident, String::as_str));
        rest = &word[end..];
    }
    out.push_str(rest);
    out
}

// ------------------------------------------------------------ the import and export sections

const IMPORT_SECTION: u8 = 2;
const EXPORT_SECTION: u8 = 7;

/// The field names of the module's imports and the names of its exports.
fn names(module: &[u8]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for (id, payload) in sections(module)? {
        match id {
            IMPORT_SECTION => names.extend(imports(payload)?.iter().map(|i| i.field.to_owned())),
            EXPORT_SECTION => names.extend(exports(payload)?.iter().map(|e| e.name.to_owned())),
            _ => {}
        }
    }
    Ok(names)
}

/// The module with its import fields and export names renamed through `names`; every other
/// byte is copied.
fn rename(module: &[u8], names: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let new_name = |name: &str| names.get(name).map_or(name, String::as_str).to_owned();
    let mut out = module[..8].to_vec();
    for (id, payload) in sections(module)? {
        let payload = match id {
            IMPORT_SECTION => {
                let list = imports(payload)?;
                let mut new = Vec::new();
                write_leb(&mut new, list.len() as u32);
                for import in list {
                    write_name(&mut new, import.module);
                    write_name(&mut new, &new_name(import.field));
                    new.extend_from_slice(import.desc);
                }
                new
            }
            EXPORT_SECTION => {
                let list = exports(payload)?;
                let mut new = Vec::new();
                write_leb(&mut new, list.len() as u32);
                for export in list {
                    write_name(&mut new, &new_name(export.name));
                    new.extend_from_slice(export.desc);
                }
                new
            }
            _ => payload.to_vec(),
        };
        out.push(id);
        write_leb(&mut out, payload.len() as u32);
        out.extend_from_slice(&payload);
    }
    Ok(out)
}

struct Export<'a> {
    name: &'a str,
    /// The export's kind and index, copied as they are.
    desc: &'a [u8],
}

fn exports(payload: &[u8]) -> Result<Vec<Export<'_>>> {
    Reader::vector(payload, |r| {
        let name = r.name()?;
        let start = r.pos;
        r.byte()?;
        r.leb()?;
        Ok(Export {
            name,
            desc: &payload[start..r.pos],
        })
    })
}

struct Import<'a> {
    module: &'a str,
    field: &'a str,
    /// The import's kind and type, copied as they are.
    desc: &'a [u8],
}

/// The module's sections as `(id, payload)`, after checking the header.
fn sections(module: &[u8]) -> Result<impl Iterator<Item = (u8, &[u8])>> {
    if module.len() < 8 || &module[..4] != b"\0asm" || module[4..8] != [1, 0, 0, 0] {
        bail!("not a WebAssembly 1.0 module");
    }
    let mut r = Reader {
        bytes: module,
        pos: 8,
    };
    let mut list = Vec::new();
    while r.pos < module.len() {
        let id = r.byte()?;
        let len = r.leb()? as usize;
        list.push((id, r.take(len)?));
    }
    Ok(list.into_iter())
}

fn imports(payload: &[u8]) -> Result<Vec<Import<'_>>> {
    Reader::vector(payload, |r| {
        let module = r.name()?;
        let field = r.name()?;
        let start = r.pos;
        match r.byte()? {
            // A function or a tag (attribute, then type index).
            0x00 => drop(r.leb()?),
            0x04 => {
                r.byte()?;
                r.leb()?;
            }
            // A table: its reference type, then limits.
            0x01 => {
                r.byte()?;
                r.limits()?;
            }
            0x02 => r.limits()?,
            // A global: value type and mutability.
            0x03 => drop(r.take(2)?),
            kind => bail!("unknown import kind {kind:#04x}"),
        }
        Ok(Import {
            module,
            field,
            desc: &payload[start..r.pos],
        })
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A vector of a section's payload: its count, then each item as `item` reads it.
    fn vector<T>(
        payload: &'a [u8],
        mut item: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut r = Reader {
            bytes: payload,
            pos: 0,
        };
        let count = r.leb()?;
        (0..count).map(|_| item(&mut r)).collect()
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            bail!("the module ends inside a section");
        };
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn leb(&mut self) -> Result<u32> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let b = self.byte()?;
            value |= u32::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        bail!("a LEB128 integer longer than 5 bytes")
    }

    fn name(&mut self) -> Result<&'a str> {
        let len = self.leb()? as usize;
        std::str::from_utf8(self.take(len)?).context("an import name is not UTF-8")
    }

    /// Table and memory limits: flags, minimum, and a maximum when flag bit 0 is set.
    fn limits(&mut self) -> Result<()> {
        let flags = self.byte()?;
        self.leb()?;
        if flags & 1 != 0 {
            self.leb()?;
        }
        Ok(())
    }
}

fn write_leb(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let b = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn write_name(out: &mut Vec<u8>, name: &str) {
    write_leb(out, name.len() as u32);
    out.extend_from_slice(name.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module importing `fields` (functions of type 0, and a memory) and exporting `exports`
    /// (functions 0, 1, ...), with a section before and after the two.
    fn module(fields: &[&str], exports: &[&str]) -> Vec<u8> {
        let mut imports = Vec::new();
        write_leb(&mut imports, fields.len() as u32 + 1);
        for field in fields {
            write_name(&mut imports, "./x_bg.js");
            write_name(&mut imports, field);
            imports.extend_from_slice(&[0x00, 0x00]);
        }
        // A memory import with a maximum, to exercise the limits.
        write_name(&mut imports, "env");
        write_name(&mut imports, "memory");
        imports.extend_from_slice(&[0x02, 0x01, 0x11, 0x80, 0x01]);
        let mut export_list = Vec::new();
        write_leb(&mut export_list, exports.len() as u32);
        for (i, name) in exports.iter().enumerate() {
            write_name(&mut export_list, name);
            export_list.extend_from_slice(&[0x00, i as u8]);
        }
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        // A type section before and a custom section after, copied unchanged.
        module.extend_from_slice(&[0x01, 0x04, 0x01, 0x60, 0x00, 0x00]);
        for (id, payload) in [(IMPORT_SECTION, imports), (EXPORT_SECTION, export_list)] {
            module.push(id);
            write_leb(&mut module, payload.len() as u32);
            module.extend_from_slice(&payload);
        }
        module.extend_from_slice(&[0x00, 0x03, 0x01, b'c', 0x07]);
        module
    }

    #[test]
    fn drops_the_hashes_and_numbers_names_that_meet() {
        let fields = [
            "__wbg_new_13de428334042d26",
            "__wbg_new_37eb45aaf5eeb820",
            "__wbg_call_a410eb4b59ed5965",
            "__wbindgen_init_externref_table",
            "__wbg_mqttclient_new",
        ];
        let exports = [
            "mqttclient_on",
            "wasm_bindgen__convert__closures_____invoke__h1a52a77a768778da",
            "wasm_bindgen__convert__closures_____invoke__h3c82436b07c3b684",
            "wasm_bindgen__convert__closures_____invoke__h3c82436b07c3b684_18",
        ];
        let all: Vec<String> = fields
            .iter()
            .chain(&exports)
            .map(|s| s.to_string())
            .collect();
        let names = short_names(&all);
        assert_eq!(names["__wbg_new_13de428334042d26"], "__wbg_new");
        assert_eq!(names["__wbg_new_37eb45aaf5eeb820"], "__wbg_new_1");
        assert_eq!(names["__wbg_call_a410eb4b59ed5965"], "__wbg_call");
        let invoke = "wasm_bindgen__convert__closures_____invoke";
        assert_eq!(names[exports[1]], invoke);
        assert_eq!(names[exports[2]], format!("{invoke}_1"));
        assert_eq!(names[exports[3]], format!("{invoke}_18"));
        assert_eq!(names.len(), 6, "names without a hash are kept: {names:?}");

        let module = module(&fields, &exports);
        let renamed = rename(&module, &names).unwrap();
        let after = super::names(&renamed).unwrap();
        let expected = [
            "__wbg_new",
            "__wbg_new_1",
            "__wbg_call",
            "__wbindgen_init_externref_table",
            "__wbg_mqttclient_new",
            "memory",
            "mqttclient_on",
            invoke,
        ];
        assert_eq!(after[..8], expected);
        assert_eq!(after[8..], [format!("{invoke}_1"), format!("{invoke}_18")]);
        // Renaming back gives the original bytes: nothing else was touched.
        let back: BTreeMap<_, _> = names.iter().map(|(k, v)| (v.clone(), k.clone())).collect();
        assert_eq!(rename(&renamed, &back).unwrap(), module);
    }

    #[test]
    fn renames_whole_identifiers_only() {
        let names = BTreeMap::from([(
            "__wbg_new_13de428334042d26".to_owned(),
            "__wbg_new".to_owned(),
        )]);
        let js = "x.__wbg_new_13de428334042d26 = 1; __wbg_new_13de428334042d26x; \
                  '__wbg_new_13de428334042d26'";
        assert_eq!(
            rename_identifiers(js, &names),
            "x.__wbg_new = 1; __wbg_new_13de428334042d26x; '__wbg_new'"
        );
    }
}
