//! Writing Bind (and, for the unnamed statement, its Parse) from Python arguments.

use ferropg_core::conn::Request;
use ferropg_core::message::frontend;
use pyo3::intern;
use pyo3::prelude::*;

use crate::codecs::{encode_value, Cache};
use crate::errors::{self, ClientError};
use crate::statement::Statement;

use super::ops::Op;

/// The InterfaceError for `given` arguments to a statement that takes `expected`.
pub(crate) fn argument_count_error(py: Python<'_>, expected: usize, given: usize) -> PyErr {
    errors::client_error_with_hint(
        py,
        ClientError::Interface,
        format!(
            "the server expects {expected} argument{} for this query, {given} {} passed",
            if expected == 1 { "" } else { "s" },
            if given == 1 { "was" } else { "were" }
        ),
        "Check the query against the passed list of arguments.",
    )
}

/// Checks the argument count, encodes every argument and writes the messages that bind
/// `args` to `portal`. On any error nothing is written.
///
/// `seqno` is the element's position in an `executemany()` sequence, for error texts.
/// `unnamed` binds the statement as the unnamed one, parsed again in the same
/// request (a connection behind a transaction-mode pooler, which may hand each
/// request another server session).
#[allow(clippy::too_many_arguments)]
pub(super) fn write_bind(
    py: Python<'_>,
    cache: &Cache,
    st: &Statement,
    args: &Bound<'_, PyAny>,
    portal: &str,
    seqno: Option<usize>,
    unnamed: bool,
    req: &mut Request<'_, Op>,
) -> PyResult<()> {
    if let Some(n) = seqno {
        if args.cast::<pyo3::types::PySequence>().is_err()
            || args.is_instance_of::<pyo3::types::PyString>()
        {
            let kind = args.get_type().name()?;
            return Err(errors::client_error(
                py,
                ClientError::Data,
                format!("invalid input in executemany() argument sequence element #{n}: expected a sequence, got {kind}"),
            ));
        }
    }
    let given = args.len()?;
    frontend::check_parameter_count(given)
        .map_err(|e| errors::client_error(py, ClientError::Interface, e.0))?;
    let expected = st.param_types.len();
    if given != expected {
        return Err(argument_count_error(py, expected, given));
    }
    let unnamed = unnamed || st.name.is_empty();
    if unnamed {
        // The unnamed statement may have been replaced since it was prepared (another
        // query, or a pooler handing us a different server session): parse it again,
        // with the parameter types already known. Should the Bind fail, the caller
        // drops the request, Parse included.
        req.parse("", &st.query, st.param_types.iter().copied())
            .map_err(|e| errors::client_error(py, ClientError::Interface, e.0))?;
    }
    let mut failed_at = 0usize;
    let result = req.bind(
        portal,
        if unnamed { "" } else { &st.name },
        st.param_formats.iter().copied(),
        expected,
        |i, buf| -> PyResult<bool> {
            failed_at = i;
            let value = args.get_item(i)?;
            if value.is_none() {
                return Ok(true);
            }
            encode_value(py, cache, &st.encoders[i], &value, buf)?;
            Ok(false)
        },
        st.result_formats.iter().copied(),
    );
    let failure = match result {
        Ok(()) => return Ok(()),
        Err(f) => f,
    };
    match failure {
        frontend::BindFailure::Param(cause) => {
            // A type the client cannot send at all is not a bad value: say so as is.
            if errors::is_instance_of(py, &cause, ClientError::UnsupportedClientFeature) {
                let msg = format!("query argument ${}: {}", failed_at + 1, cause.value(py));
                return Err(errors::client_error(
                    py,
                    ClientError::UnsupportedClientFeature,
                    msg,
                ));
            }
            let value = args.get_item(failed_at)?;
            // reprlib bounds the depth and width: a value nested 100,000 levels deep
            // (or a huge one) still gets a short message, not a RecursionError.
            let mut repr = py
                .import(intern!(py, "reprlib"))?
                .call_method1(intern!(py, "repr"), (value,))?
                .to_string();
            if repr.chars().count() > 40 {
                repr = repr.chars().take(40).collect::<String>() + "...";
            }
            let position = match seqno {
                Some(n) => format!(
                    "${} in element #{n} of executemany() sequence",
                    failed_at + 1
                ),
                None => format!("${}", failed_at + 1),
            };
            let msg = format!(
                "invalid input for query argument {position}: {repr} ({})",
                cause.value(py).str()?
            );
            let err = errors::client_error(py, ClientError::Data, msg);
            err.set_cause(py, Some(cause));
            Err(err)
        }
        frontend::BindFailure::Encode(e) => {
            Err(errors::client_error(py, ClientError::Interface, e.0))
        }
    }
}
