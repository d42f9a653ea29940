//! `sshard_data_type`: a borrowed view of a column or marker type, for
//! callers that walk nested types (list element, map key/value, tuple
//! elements, UDT fields). It lives as long as the result or prepared
//! statement it came from; never freed.

use std::ffi::c_char;

use super::enums::{sshard_type, type_of};
use super::handle::{check_index, out_arg, view_ref};
use super::status::{sshard_status, Fail, FfiResult, SSHARD_STATUS_TYPE_MISMATCH};
use crate::protocol::ColumnType;

/// Opaque view of a CQL type. Never constructed: pointers to it are
/// pointers to the library's type descriptions.
pub struct sshard_data_type {
    _opaque: (),
}

pub(crate) fn data_type_ptr(ty: &ColumnType) -> *const sshard_data_type {
    (ty as *const ColumnType).cast()
}

/// # Safety
/// `ptr` is NULL or came from [`data_type_ptr`] and its owner is alive.
unsafe fn data_type<'a>(ptr: *const sshard_data_type) -> FfiResult<&'a ColumnType> {
    // SAFETY: such pointers are `&ColumnType` cast by `data_type_ptr`.
    unsafe { view_ref(ptr.cast::<ColumnType>(), "data_type") }
}

/// The types nested in `ty`: the element of a list or set, the key and value
/// of a map, the elements of a tuple, the fields of a UDT.
pub(crate) fn sub_types(ty: &ColumnType) -> Vec<&ColumnType> {
    match ty {
        ColumnType::List(e) | ColumnType::Set(e) => vec![&**e],
        ColumnType::Map(k, v) => vec![&**k, &**v],
        ColumnType::Tuple(elements) => elements.iter().collect(),
        ColumnType::Udt(udt) => udt.fields.iter().map(|(_, t)| t).collect(),
        _ => Vec::new(),
    }
}

/// The type's kind (`SSHARD_TYPE_*`).
#[no_mangle]
pub unsafe extern "C" fn sshard_data_type_kind(
    data_type: *const sshard_data_type,
    kind: *mut sshard_type,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live data type view (API contract).
        let ty = unsafe { self::data_type(data_type) }?;
        out_arg(kind, "kind")?.write(type_of(ty));
        Ok(())
    }
}

/// The number of nested types (1 for list/set, 2 for map, the elements of a
/// tuple, the fields of a UDT, 0 for native types).
#[no_mangle]
pub unsafe extern "C" fn sshard_data_type_sub_type_count(
    data_type: *const sshard_data_type,
    count: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live data type view (API contract).
        let ty = unsafe { self::data_type(data_type) }?;
        out_arg(count, "count")?.write(sub_types(ty).len());
        Ok(())
    }
}

/// The nested type at `index` (see `sshard_data_type_sub_type_count`).
#[no_mangle]
pub unsafe extern "C" fn sshard_data_type_sub_type(
    data_type: *const sshard_data_type,
    index: usize,
    sub_type: *mut *const sshard_data_type,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live data type view (API contract).
        let ty = unsafe { self::data_type(data_type) }?;
        let out = out_arg(sub_type, "sub_type")?;
        let subs = sub_types(ty);
        let i = check_index(index, subs.len())?;
        out.write(data_type_ptr(subs[i]));
        Ok(())
    }
}

/// The name of a UDT's field `index`.
#[no_mangle]
pub unsafe extern "C" fn sshard_data_type_field_name(
    data_type: *const sshard_data_type,
    index: usize,
    name: *mut *const c_char,
    name_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live data type view (API contract).
        let ty = unsafe { self::data_type(data_type) }?;
        let name = out_arg(name, "name")?;
        let name_len = out_arg(name_len, "name_len")?;
        let ColumnType::Udt(udt) = ty else {
            return Err(Fail::new(SSHARD_STATUS_TYPE_MISMATCH, format!("{ty} is not a UDT")));
        };
        let i = check_index(index, udt.fields.len())?;
        name.write(udt.fields[i].0.as_ptr().cast());
        name_len.write(udt.fields[i].0.len());
        Ok(())
    }
}

/// The name of a UDT type, or the class of a custom type.
#[no_mangle]
pub unsafe extern "C" fn sshard_data_type_name(
    data_type: *const sshard_data_type,
    name: *mut *const c_char,
    name_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live data type view (API contract).
        let ty = unsafe { self::data_type(data_type) }?;
        let name = out_arg(name, "name")?;
        let name_len = out_arg(name_len, "name_len")?;
        let s = match ty {
            ColumnType::Udt(udt) => &udt.name,
            ColumnType::Custom(class) => class,
            other => {
                return Err(Fail::new(
                    SSHARD_STATUS_TYPE_MISMATCH,
                    format!("{other} is neither a UDT nor a custom type"),
                ))
            }
        };
        name.write(s.as_ptr().cast());
        name_len.write(s.len());
        Ok(())
    }
}

/// The keyspace of a UDT type.
#[no_mangle]
pub unsafe extern "C" fn sshard_data_type_keyspace(
    data_type: *const sshard_data_type,
    keyspace: *mut *const c_char,
    keyspace_len: *mut usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live data type view (API contract).
        let ty = unsafe { self::data_type(data_type) }?;
        let keyspace = out_arg(keyspace, "keyspace")?;
        let keyspace_len = out_arg(keyspace_len, "keyspace_len")?;
        let ColumnType::Udt(udt) = ty else {
            return Err(Fail::new(SSHARD_STATUS_TYPE_MISMATCH, format!("{ty} is not a UDT")));
        };
        keyspace.write(udt.keyspace.as_ptr().cast());
        keyspace_len.write(udt.keyspace.len());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::enums::*;
    use crate::ffi::status::*;
    use crate::protocol::types::UdtType;
    use std::ptr::{null, null_mut};

    #[test]
    fn nested_types_are_walkable() {
        let ty = ColumnType::Map(
            Box::new(ColumnType::Text),
            Box::new(ColumnType::Udt(Box::new(UdtType {
                keyspace: "ks".into(),
                name: "addr".into(),
                fields: vec![("street".into(), ColumnType::Text)],
            }))),
        );
        let dt = data_type_ptr(&ty);
        // SAFETY: `ty` outlives every view; out pointers are valid locals.
        unsafe {
            let mut k = 0;
            assert_eq!(sshard_data_type_kind(dt, &mut k), 0);
            assert_eq!(k, SSHARD_TYPE_MAP);
            let mut n = 0;
            assert_eq!(sshard_data_type_sub_type_count(dt, &mut n), 0);
            assert_eq!(n, 2);
            let mut sub = null();
            assert_eq!(sshard_data_type_sub_type(dt, 1, &mut sub), 0);
            assert_eq!(sshard_data_type_kind(sub, &mut k), 0);
            assert_eq!(k, SSHARD_TYPE_UDT);
            let (mut p, mut len) = (null(), 0);
            assert_eq!(sshard_data_type_field_name(sub, 0, &mut p, &mut len), 0);
            assert_eq!(std::slice::from_raw_parts(p.cast::<u8>(), len), b"street");
            assert_eq!(sshard_data_type_name(sub, &mut p, &mut len), 0);
            assert_eq!(std::slice::from_raw_parts(p.cast::<u8>(), len), b"addr");
            assert_eq!(sshard_data_type_keyspace(sub, &mut p, &mut len), 0);
            assert_eq!(std::slice::from_raw_parts(p.cast::<u8>(), len), b"ks");
            assert_eq!(
                sshard_data_type_sub_type(dt, 2, &mut sub),
                SSHARD_STATUS_INDEX_OUT_OF_RANGE
            );
            assert_eq!(
                sshard_data_type_field_name(dt, 0, &mut p, &mut len),
                SSHARD_STATUS_TYPE_MISMATCH
            );
            assert_eq!(
                sshard_data_type_name(dt, &mut p, &mut len),
                SSHARD_STATUS_TYPE_MISMATCH
            );
            assert_eq!(
                sshard_data_type_keyspace(dt, &mut p, &mut len),
                SSHARD_STATUS_TYPE_MISMATCH
            );
            // NULL arguments.
            assert_eq!(
                sshard_data_type_kind(null(), &mut k),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_data_type_kind(dt, null_mut()),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_data_type_sub_type_count(null(), &mut n),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_data_type_sub_type(null(), 0, &mut sub),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_data_type_sub_type(dt, 0, null_mut()),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_data_type_field_name(null(), 0, &mut p, &mut len),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_data_type_name(null(), &mut p, &mut len),
                SSHARD_STATUS_NULL_ARGUMENT
            );
            assert_eq!(
                sshard_data_type_keyspace(sub, null_mut(), &mut len),
                SSHARD_STATUS_NULL_ARGUMENT
            );
        }
    }
}
