//! The Record object: memory layout, the type objects, allocation (with a per-thread
//! freelist), deallocation (behind our own trashcan) and the GC protocol.
//!
//! Layout: a `PyVarObject` header whose `ob_size` is the number of values, a strong
//! reference to the [`RecordDesc`], then `ob_size` value pointers inline
//! (`tp_itemsize` = one pointer). A Python subclass that gets a `__dict__` keeps it
//! after the values (CPython's negative `tp_dictoffset` for variable-size types), so
//! the values start at the same offset for every Record class.
//!
//! Invariants: a live record (refcount > 0, visible to Python) has a non-NULL `desc`
//! and non-NULL items. Items are NULL only while a [`RecordBuilder`] fills them, when
//! the record is untracked and unreachable from Python. A record is GC-tracked only if
//! one of its values may be part of a reference cycle or its class gives it a `__dict__`.
//!
//! [`RecordBuilder`]: super::RecordBuilder

use std::cell::Cell;
use std::ffi::{c_int, c_uint, c_void, CStr};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Mutex;

use pyo3::exceptions::PyMemoryError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use super::{iter, slots, RecordDesc};

/// The fixed part of a Record; the values follow it.
#[repr(C)]
pub(super) struct RecordObject {
    ob_base: ffi::PyVarObject,
    /// Strong reference to the shared `RecordDesc`. NULL only while the object is being
    /// destroyed; on the freelist and in the trashcan's queue it links to the next one.
    desc: *mut ffi::PyObject,
}

/// `tp_basicsize`: where the values start.
pub(super) const BASIC_SIZE: usize = std::mem::size_of::<RecordObject>();
/// `tp_itemsize`.
const ITEM_SIZE: usize = std::mem::size_of::<*mut ffi::PyObject>();
/// The most values a record can hold without its size overflowing `Py_ssize_t`.
const MAX_LEN: usize = (isize::MAX as usize - BASIC_SIZE) / ITEM_SIZE - 1;

/// The record's values: `ob_size` pointers starting at `BASIC_SIZE`.
///
/// # Safety
/// `obj` must point to a Record (of any Record class).
#[inline]
pub(super) unsafe fn items_ptr(obj: *mut ffi::PyObject) -> *mut *mut ffi::PyObject {
    // SAFETY: every Record allocation is `BASIC_SIZE + ob_size * ITEM_SIZE` bytes or
    // more (the caller guarantees `obj` is one), so the offset stays inside it.
    unsafe { obj.cast::<u8>().add(BASIC_SIZE).cast() }
}

/// The number of values.
///
/// # Safety
/// `obj` must point to a Record.
#[inline]
pub(super) unsafe fn len(obj: *mut ffi::PyObject) -> usize {
    // SAFETY: a Record is a PyVarObject whose ob_size is never negative.
    unsafe { ffi::Py_SIZE(obj) as usize }
}

/// The values as a slice of (non-NULL) borrowed pointers.
///
/// # Safety
/// `obj` must point to a live, finished Record, and the slice must not outlive it.
#[inline]
pub(super) unsafe fn items<'a>(obj: *mut ffi::PyObject) -> &'a [*mut ffi::PyObject] {
    // SAFETY: `items_ptr` points at `len(obj)` initialised pointers (caller's contract).
    unsafe { std::slice::from_raw_parts(items_ptr(obj), len(obj)) }
}

/// Stores `value` (a strong reference, moved in) in slot `i`, which must be empty.
///
/// # Safety
/// `obj` must point to a Record under construction with `i < len(obj)` and slot `i`
/// still NULL.
#[inline]
pub(super) unsafe fn set_item(obj: *mut ffi::PyObject, i: usize, value: *mut ffi::PyObject) {
    // SAFETY: `i < len(obj)` (caller's contract), so the write is in bounds.
    unsafe {
        let slot = items_ptr(obj).add(i);
        debug_assert!((*slot).is_null());
        *slot = value;
    }
}

/// The record's descriptor.
///
/// # Safety
/// `obj` must point to a live Record; the reference must not outlive it.
#[inline]
pub(super) unsafe fn desc<'a>(obj: *mut ffi::PyObject) -> &'a RecordDesc {
    // SAFETY: a live record's `desc` is a strong, non-NULL reference to a RecordDesc
    // instance; `Py<T>` is a transparent wrapper of a non-NULL object pointer, so the
    // field can be read as one, and the frozen pyclass can be borrowed without a flag.
    unsafe {
        let field = ptr::addr_of!((*obj.cast::<RecordObject>()).desc);
        (*field.cast::<Py<RecordDesc>>()).get()
    }
}

/// The type objects, created together on first use.
pub(super) struct Types {
    pub(super) record: Py<PyType>,
    pub(super) values_iter: Py<PyType>,
    pub(super) items_iter: Py<PyType>,
}

static TYPES: PyOnceLock<Types> = PyOnceLock::new();
/// `Types::record`, for the checks that run without a `Python` token (dealloc).
static RECORD_TYPE: AtomicPtr<ffi::PyTypeObject> = AtomicPtr::new(ptr::null_mut());

/// The type objects.
pub(super) fn types(py: Python<'_>) -> PyResult<&'static Types> {
    TYPES.get_or_try_init(py, || {
        let types = Types {
            record: slots::create_record_type(py)?,
            values_iter: iter::create_values_iter_type(py)?,
            items_iter: iter::create_items_iter_type(py)?,
        };
        RECORD_TYPE.store(types.record.bind(py).as_type_ptr(), Ordering::Release);
        Ok(types)
    })
}

/// The base Record type, or NULL before it exists (then no record exists either).
#[inline]
fn base_type() -> *mut ffi::PyTypeObject {
    RECORD_TYPE.load(Ordering::Acquire)
}

/// Whether `tp` is the Record type or a subclass of it.
///
/// # Safety
/// `tp` must point to a type object.
#[inline]
pub(super) unsafe fn is_record_type(tp: *mut ffi::PyTypeObject) -> bool {
    let base = base_type();
    // SAFETY: both are type objects (`base` is only compared when non-NULL).
    !base.is_null() && (tp == base || unsafe { ffi::PyType_IsSubtype(tp, base) } != 0)
}

/// Whether `obj` is a Record (of any Record class).
///
/// # Safety
/// `obj` must point to a live object.
#[inline]
pub(super) unsafe fn is_record(obj: *mut ffi::PyObject) -> bool {
    // SAFETY: a live object's type pointer is a type object.
    unsafe { is_record_type(ffi::Py_TYPE(obj)) }
}

/// Creates a heap type from a spec: `name` must be `module.qualname`.
pub(super) fn type_from_spec(
    py: Python<'_>,
    name: &'static CStr,
    basicsize: usize,
    itemsize: usize,
    flags: std::ffi::c_ulong,
    slots: &mut [ffi::PyType_Slot],
) -> PyResult<Py<PyType>> {
    debug_assert_eq!(slots.last().map(|s| s.slot), Some(0), "unterminated slots");
    let mut spec = ffi::PyType_Spec {
        name: name.as_ptr(),
        basicsize: basicsize as c_int,
        itemsize: itemsize as c_int,
        flags: flags as c_uint,
        slots: slots.as_mut_ptr(),
    };
    // SAFETY: the spec is valid for the call: `name` is 'static (older CPythons keep the
    // pointer), the slots array ends with the zero sentinel and only holds functions
    // of the right signatures and 'static data (method tables, doc strings); CPython
    // copies what it keeps of the spec itself.
    let ty = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(&mut spec))? };
    Ok(ty.cast_into::<PyType>()?.unbind())
}

/// Allocates an empty record of `len` NULL items over `desc`, of class `cls`.
///
/// The record comes back untracked; the flag says whether it must be tracked when
/// finished regardless of its values (a class whose instances have a `__dict__`).
pub(super) fn alloc(
    py: Python<'_>,
    cls: &Bound<'_, PyType>,
    desc: &Py<RecordDesc>,
    len: usize,
) -> PyResult<(NonNull<ffi::PyObject>, bool)> {
    let base = types(py)?.record.bind(py).as_type_ptr();
    let tp = cls.as_type_ptr();
    if len > MAX_LEN {
        return Err(PyMemoryError::new_err(()));
    }
    let (obj, always_track) = if tp == base {
        let obj = match freelist_pop(len) {
            // SAFETY: a freelist entry is the memory of a destroyed Record of exactly
            // `len` items (ob_size already `len`), untracked, with its GC header in
            // place; PyObject_InitVar makes it a new object of the Record type again
            // (type reference, refcount 1, tracemalloc/refcount bookkeeping).
            Some(obj) => unsafe {
                ffi::PyObject_InitVar(obj.cast(), tp, len as ffi::Py_ssize_t);
                obj
            },
            None => {
                free_orphans();
                // SAFETY: `tp` is our GC type with `tp_itemsize` = one pointer; the new
                // object is untracked and its items are uninitialised (set below).
                unsafe { ffi::PyObject_GC_NewVar::<ffi::PyObject>(tp, len as ffi::Py_ssize_t) }
            }
        };
        (obj, false)
    } else {
        // SAFETY: `tp` is a type object.
        if unsafe { ffi::PyType_IsSubtype(tp, base) } == 0 {
            return Err(super::not_a_record_class(cls));
        }
        // SAFETY: `tp` is a type object.
        let (itemsize, basicsize, alloc) =
            unsafe { ((*tp).tp_itemsize, (*tp).tp_basicsize, (*tp).tp_alloc) };
        // Python subclasses keep `tp_itemsize` and only add a `__dict__` pointer after
        // the items; refuse anything laid out differently.
        if itemsize as usize != ITEM_SIZE || (basicsize as usize) < BASIC_SIZE {
            return Err(super::not_a_record_class(cls));
        }
        let alloc = alloc.unwrap_or(ffi::PyType_GenericAlloc);
        // SAFETY: `tp_alloc(tp, n)` allocates an instance of `tp` with room for `n`
        // items (PyType_GenericAlloc zero-fills it and starts tracking it).
        let obj = unsafe { alloc(tp, len as ffi::Py_ssize_t) };
        if !obj.is_null() {
            // SAFETY: `obj` is a new, unshared instance of a GC type: stop tracking it
            // until its items are set (no collection may see NULL items) and clear the
            // item slots whatever tp_alloc left in them.
            unsafe {
                ffi::PyObject_GC_UnTrack(obj.cast());
                ptr::write_bytes(items_ptr(obj), 0, len);
                (*obj.cast::<RecordObject>()).desc = ptr::null_mut();
            }
        }
        (obj, basicsize as usize > BASIC_SIZE)
    };
    let Some(obj) = NonNull::new(obj) else {
        return Err(PyErr::fetch(py));
    };
    // SAFETY: `obj` is a fresh record of `len` slots that nothing else references; the
    // descriptor reference is a new strong one, and NULL items mark empty slots.
    unsafe {
        let raw = obj.as_ptr();
        (*raw.cast::<RecordObject>()).desc = desc.clone_ref(py).into_ptr();
        if tp == base {
            ptr::write_bytes(items_ptr(raw), 0, len);
        }
    }
    Ok((obj, always_track))
}

/// Whether a record holding `value` must be GC-tracked.
///
/// Objects of non-GC types (int, str, bytes, None, Decimal, datetime, ...) cannot be
/// in a cycle, nor can untracked immutable containers (tuples CPython untracked,
/// untracked Records). Anything else may be in one now or later: a dict of atoms is
/// untracked only until something else is put in it.
#[inline]
pub(super) fn may_be_in_cycle(value: &Bound<'_, PyAny>) -> bool {
    let obj = value.as_ptr();
    // SAFETY: `value` is a live object; these only read its type and GC header.
    unsafe {
        let tp = ffi::Py_TYPE(obj);
        if ffi::PyType_IS_GC(tp) == 0 {
            return false;
        }
        if ffi::PyObject_GC_IsTracked(obj) != 0 {
            return true;
        }
        !(tp == ptr::addr_of_mut!(ffi::PyTuple_Type)
            || is_record_type(tp)
            || crate::codecs::is_untracked_uuid(value.py(), tp))
    }
}

// ---------------------------------------------------------------------------------
// Hidden lists. An array value arrives as a fresh list of atoms (ints, strs...): it is
// in no cycle, and nothing but its record can reach it. Such a list is untracked when
// it goes into a record, so the collector does not walk thousands of them per result
// (the record itself stays tracked, to keep any later cycle through it collectable).
// Every way out of a record goes through `hand_out`, which tracks the list (and the
// lists nested in it) again before anyone can put it in a cycle.

/// Untracks `value` if it is a list only its record holds, of atoms or such lists.
/// Returns whether it did.
pub(super) fn hide_list(value: &Bound<'_, PyAny>) -> bool {
    let obj = value.as_ptr();
    // SAFETY: `value` is live; a refcount of 1 means the record's reference is the only
    // one, so no one else can see the list change state.
    unsafe {
        if ffi::PyList_CheckExact(obj) == 0 || ffi::Py_REFCNT(obj) != 1 {
            return false;
        }
        if !hideable(value.py(), obj, 0) {
            return false;
        }
        set_tracking(obj, false);
    }
    true
}

/// Whether the list `obj` holds only atoms and hideable lists (nested at most 6 deep,
/// as arrays are).
///
/// # Safety
/// `obj` must be a live list.
unsafe fn hideable(py: Python<'_>, obj: *mut ffi::PyObject, depth: usize) -> bool {
    if depth > 6 {
        return false;
    }
    // SAFETY: the caller's contract; items are live while the list is.
    unsafe {
        let n = ffi::PyList_GET_SIZE(obj);
        for i in 0..n {
            let item = ffi::PyList_GET_ITEM(obj, i);
            let ok = if ffi::PyList_CheckExact(item) != 0 {
                ffi::Py_REFCNT(item) == 1 && hideable(py, item, depth + 1)
            } else {
                !may_be_in_cycle(&Bound::from_borrowed_ptr(py, item))
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

/// Tracks or untracks the list `obj` and the lists nested in it.
///
/// # Safety
/// `obj` must be a live list whose nested lists are hidden with it.
unsafe fn set_tracking(obj: *mut ffi::PyObject, track: bool) {
    // SAFETY: the caller's contract.
    unsafe {
        if track {
            if ffi::PyObject_GC_IsTracked(obj) == 0 {
                ffi::PyObject_GC_Track(obj.cast());
            }
        } else if ffi::PyObject_GC_IsTracked(obj) != 0 {
            ffi::PyObject_GC_UnTrack(obj.cast());
        }
        let n = ffi::PyList_GET_SIZE(obj);
        for i in 0..n {
            let item = ffi::PyList_GET_ITEM(obj, i);
            if ffi::PyList_CheckExact(item) != 0 {
                set_tracking(item, track);
            }
        }
    }
}

/// A value is about to leave its record: a hidden list becomes an ordinary one.
///
/// # Safety
/// `value` must be a live item of a live record.
#[inline]
pub(super) unsafe fn hand_out(value: *mut ffi::PyObject) {
    // SAFETY: the caller's contract; only hidden lists are untracked exact lists here.
    unsafe {
        if ffi::PyList_CheckExact(value) != 0 && ffi::PyObject_GC_IsTracked(value) == 0 {
            set_tracking(value, true);
        }
    }
}

// ---------------------------------------------------------------------------------
// Freelist: per thread, as CPython's own freelists are under free-threading. A thread
// that exits hands its spare records to `ORPHANS`, which the next allocation that
// misses its freelist frees (it cannot call into Python itself).

/// Records with fewer values than this are kept for reuse.
const FREELIST_SIZES: usize = 20;
/// Spare records kept per size.
const FREELIST_DEPTH: u32 = 2000;

struct FreeList {
    /// Per size, a chain of spare records linked through their `desc` field.
    heads: [Cell<*mut ffi::PyObject>; FREELIST_SIZES],
    counts: [Cell<u32>; FREELIST_SIZES],
}

impl FreeList {
    const fn new() -> Self {
        FreeList {
            heads: [const { Cell::new(ptr::null_mut()) }; FREELIST_SIZES],
            counts: [const { Cell::new(0) }; FREELIST_SIZES],
        }
    }
}

impl Drop for FreeList {
    fn drop(&mut self) {
        let mut spare = Vec::new();
        for head in &self.heads {
            let mut obj = head.replace(ptr::null_mut());
            while !obj.is_null() {
                spare.push(obj as usize);
                // SAFETY: freelist entries are Record memory owned by this list, linked
                // through `desc`.
                obj = unsafe { (*obj.cast::<RecordObject>()).desc };
            }
        }
        if !spare.is_empty() {
            if let Ok(mut orphans) = ORPHANS.lock() {
                orphans.extend(spare);
                ORPHANED.store(true, Ordering::Release);
            }
        }
    }
}

thread_local! {
    static FREELIST: FreeList = const { FreeList::new() };
}

/// Spare records of exited threads (addresses), waiting for `PyObject_GC_Del`.
static ORPHANS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static ORPHANED: AtomicBool = AtomicBool::new(false);

/// Takes a spare record of `len` values, if this thread has one.
#[inline]
fn freelist_pop(len: usize) -> Option<*mut ffi::PyObject> {
    if len >= FREELIST_SIZES {
        return None;
    }
    FREELIST
        .try_with(|fl| {
            let obj = fl.heads[len].get();
            if obj.is_null() {
                return None;
            }
            // SAFETY: a freelist entry is Record memory owned by this list, linked
            // through `desc`.
            let next =
                unsafe { ptr::replace(&mut (*obj.cast::<RecordObject>()).desc, ptr::null_mut()) };
            fl.heads[len].set(next);
            fl.counts[len].set(fl.counts[len].get() - 1);
            Some(obj)
        })
        .ok()
        .flatten()
}

/// Keeps the memory of a destroyed Record of `len` values for reuse; false if full.
///
/// # Safety
/// `obj` must be an untracked, emptied (items released, `desc` NULL) object of the
/// exact Record type, whose refcount has dropped to zero.
#[inline]
unsafe fn freelist_push(obj: *mut ffi::PyObject, len: usize) -> bool {
    if len >= FREELIST_SIZES {
        return false;
    }
    FREELIST
        .try_with(|fl| {
            let count = fl.counts[len].get();
            if count >= FREELIST_DEPTH {
                return false;
            }
            // SAFETY: the object is dead and ours (caller's contract); its `desc` field
            // becomes the chain link.
            unsafe { (*obj.cast::<RecordObject>()).desc = fl.heads[len].get() };
            fl.heads[len].set(obj);
            fl.counts[len].set(count + 1);
            true
        })
        .unwrap_or(false)
}

/// Frees the spare records exited threads left behind. Needs an attached thread.
#[inline]
fn free_orphans() {
    if !ORPHANED.load(Ordering::Acquire) {
        return;
    }
    let orphans = match ORPHANS.lock() {
        Ok(mut orphans) => {
            ORPHANED.store(false, Ordering::Release);
            std::mem::take(&mut *orphans)
        }
        Err(_) => return,
    };
    for obj in orphans {
        // SAFETY: each is the memory of a destroyed, untracked Record (from a freelist)
        // allocated by PyObject_GC_NewVar, freed exactly once here while attached; its
        // type pointer still names the Record type, which lives for the process.
        unsafe { ffi::PyObject_GC_Del(obj as *mut c_void) };
    }
}

/// The freelist's fill per size, for this thread.
pub(super) fn freelist_counts() -> Vec<u32> {
    FREELIST
        .try_with(|fl| fl.counts.iter().map(Cell::get).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------
// Deallocation. Dropping a record drops its values, which may be records (composite
// columns, user data), so a deep nest would recurse once per level and could exhaust
// the C stack. CPython's Py_TRASHCAN macros are not part of the API PyO3 exposes (and
// change between versions), so we keep our own: past `TRASH_LIMIT` nested record
// deallocations, a record is queued (linked through `desc`) and destroyed by the
// outermost record deallocation once it has unwound.

const TRASH_LIMIT: u32 = 50;

struct Trash {
    depth: Cell<u32>,
    queue: Cell<*mut ffi::PyObject>,
}

thread_local! {
    static TRASH: Trash = const {
        Trash {
            depth: Cell::new(0),
            queue: Cell::new(ptr::null_mut()),
        }
    };
}

/// `tp_dealloc` of every Record class (subclasses reach it through subtype_dealloc).
pub(super) unsafe extern "C" fn record_dealloc(obj: *mut ffi::PyObject) {
    // SAFETY: CPython calls tp_dealloc once, on a Record whose refcount dropped to zero;
    // nothing else references it, so we may untrack it and release its descriptor.
    unsafe {
        ffi::PyObject_GC_UnTrack(obj.cast());
        let desc = ptr::replace(&mut (*obj.cast::<RecordObject>()).desc, ptr::null_mut());
        ffi::Py_XDECREF(desc);
    }
    let queued = TRASH.with(|trash| {
        let depth = trash.depth.get();
        if depth >= TRASH_LIMIT {
            // SAFETY: `obj` is dead and ours; its free `desc` field links the queue.
            unsafe { (*obj.cast::<RecordObject>()).desc = trash.queue.get() };
            trash.queue.set(obj);
            return true;
        }
        trash.depth.set(depth + 1);
        false
    });
    if queued {
        return;
    }
    // SAFETY: `obj` is dead, untracked and has no descriptor.
    unsafe { destroy(obj) };
    TRASH.with(|trash| {
        let depth = trash.depth.get() - 1;
        if depth == 0 {
            // Outermost: destroy what deeper levels queued (each at depth 1, so their
            // own values may queue more).
            loop {
                let next = trash.queue.get();
                if next.is_null() {
                    break;
                }
                // SAFETY: queued objects are dead records like `obj`, linked by `desc`.
                unsafe {
                    let link =
                        ptr::replace(&mut (*next.cast::<RecordObject>()).desc, ptr::null_mut());
                    trash.queue.set(link);
                    destroy(next);
                }
            }
        }
        trash.depth.set(depth);
    });
}

/// Releases a dead record's values and its memory (or keeps it on the freelist).
///
/// # Safety
/// `obj` must be a Record whose refcount dropped to zero, untracked, `desc` NULL.
unsafe fn destroy(obj: *mut ffi::PyObject) {
    // SAFETY: see the contract; items may be NULL (a builder dropped half-way). The
    // type reference the object held is released last: the freelist keeps the memory,
    // not the type (PyObject_InitVar takes a new type reference on reuse), and a
    // subclass instance may hold the last reference to its class.
    unsafe {
        let tp = ffi::Py_TYPE(obj);
        let n = len(obj);
        let items = items_ptr(obj);
        for i in (0..n).rev() {
            let item = ptr::replace(items.add(i), ptr::null_mut());
            ffi::Py_XDECREF(item);
        }
        if !(tp == base_type() && freelist_push(obj, n)) {
            match (*tp).tp_free {
                Some(free) => free(obj.cast()),
                None => ffi::PyObject_GC_Del(obj.cast()),
            }
        }
        ffi::Py_DECREF(tp.cast());
    }
}

/// `tp_traverse`: the values, the descriptor and (a heap type's duty) the type.
pub(super) unsafe extern "C" fn record_traverse(
    obj: *mut ffi::PyObject,
    visit: ffi::visitproc,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: the collector only traverses tracked records, whose items and
    // descriptor are set (NULLs are skipped all the same); the type is a live heap type.
    unsafe {
        for &item in std::slice::from_raw_parts(items_ptr(obj), len(obj)) {
            if !item.is_null() {
                let r = visit(item, arg);
                if r != 0 {
                    return r;
                }
            }
        }
        let desc = (*obj.cast::<RecordObject>()).desc;
        if !desc.is_null() {
            let r = visit(desc, arg);
            if r != 0 {
                return r;
            }
        }
        visit(ffi::Py_TYPE(obj).cast(), arg)
    }
}

/// `tp_clear`: breaks cycles through this record by replacing the values that can be
/// in one with None. Slots never become NULL, so a cleared record stays safe to use.
pub(super) unsafe extern "C" fn record_clear(obj: *mut ffi::PyObject) -> c_int {
    // SAFETY: called by the collector on a tracked (finished) record; each replaced
    // value is released after its slot is updated, so re-entrant code sees None.
    unsafe {
        let items = items_ptr(obj);
        for i in 0..len(obj) {
            let slot = items.add(i);
            let old = *slot;
            if !old.is_null() && ffi::PyType_IS_GC(ffi::Py_TYPE(old)) != 0 {
                *slot = ffi::Py_NewRef(ffi::Py_None());
                ffi::Py_DECREF(old);
            }
        }
    }
    0
}
