//! OIDs of the built-in types the codecs know.

#![allow(missing_docs)]

pub const BOOL: u32 = 16;
pub const BYTEA: u32 = 17;
pub const CHAR: u32 = 18;
pub const NAME: u32 = 19;
pub const INT8: u32 = 20;
pub const INT2: u32 = 21;
pub const INT4: u32 = 23;
pub const TEXT: u32 = 25;
pub const OID: u32 = 26;
pub const JSON: u32 = 114;
pub const XML: u32 = 142;
pub const FLOAT4: u32 = 700;
pub const FLOAT8: u32 = 701;
pub const UNKNOWN: u32 = 705;
pub const BPCHAR: u32 = 1042;
pub const VARCHAR: u32 = 1043;
pub const DATE: u32 = 1082;
pub const TIME: u32 = 1083;
pub const TIMESTAMP: u32 = 1114;
pub const TIMESTAMPTZ: u32 = 1184;
pub const INTERVAL: u32 = 1186;
pub const TIMETZ: u32 = 1266;
pub const NUMERIC: u32 = 1700;
pub const UUID: u32 = 2950;
pub const JSONB: u32 = 3802;
pub const VOID: u32 = 2278;
pub const RECORD: u32 = 2249;
pub const INT2VECTOR: u32 = 22;
pub const TID: u32 = 27;
pub const XID: u32 = 28;
pub const CID: u32 = 29;
pub const OIDVECTOR: u32 = 30;
pub const POINT: u32 = 600;
pub const LSEG: u32 = 601;
pub const PATH: u32 = 602;
pub const BOX: u32 = 603;
pub const POLYGON: u32 = 604;
pub const LINE: u32 = 628;
pub const CIDR: u32 = 650;
pub const CIRCLE: u32 = 718;
pub const INET: u32 = 869;
pub const BIT: u32 = 1560;
pub const VARBIT: u32 = 1562;
pub const TXID_SNAPSHOT: u32 = 2970;
pub const PG_LSN: u32 = 3220;
pub const JSONPATH: u32 = 4072;
pub const XID8: u32 = 5069;
pub const PG_SNAPSHOT: u32 = 5038;

// Ranges and multiranges.
pub const INT4RANGE: u32 = 3904;
pub const NUMRANGE: u32 = 3906;
pub const TSRANGE: u32 = 3908;
pub const TSTZRANGE: u32 = 3910;
pub const DATERANGE: u32 = 3912;
pub const INT8RANGE: u32 = 3926;
pub const INT4MULTIRANGE: u32 = 4451;
pub const NUMMULTIRANGE: u32 = 4532;
pub const TSMULTIRANGE: u32 = 4533;
pub const TSTZMULTIRANGE: u32 = 4534;
pub const DATEMULTIRANGE: u32 = 4535;
pub const INT8MULTIRANGE: u32 = 4536;

/// Built-in range types and their subtypes.
pub const RANGE_TYPES: &[(u32, u32)] = &[
    (INT4RANGE, INT4),
    (NUMRANGE, NUMERIC),
    (TSRANGE, TIMESTAMP),
    (TSTZRANGE, TIMESTAMPTZ),
    (DATERANGE, DATE),
    (INT8RANGE, INT8),
];

/// Built-in multirange types and their range types.
pub const MULTIRANGE_TYPES: &[(u32, u32)] = &[
    (INT4MULTIRANGE, INT4RANGE),
    (NUMMULTIRANGE, NUMRANGE),
    (TSMULTIRANGE, TSRANGE),
    (TSTZMULTIRANGE, TSTZRANGE),
    (DATEMULTIRANGE, DATERANGE),
    (INT8MULTIRANGE, INT8RANGE),
];

/// The subtype of a built-in range type.
pub fn range_subtype(range_oid: u32) -> Option<u32> {
    RANGE_TYPES
        .iter()
        .find(|(r, _)| *r == range_oid)
        .map(|(_, s)| *s)
}

/// The range type of a built-in multirange type.
pub fn multirange_range(multirange_oid: u32) -> Option<u32> {
    MULTIRANGE_TYPES
        .iter()
        .find(|(m, _)| *m == multirange_oid)
        .map(|(_, r)| *r)
}

// Array types of the element types above.
pub const BOOL_ARRAY: u32 = 1000;
pub const BYTEA_ARRAY: u32 = 1001;
pub const CHAR_ARRAY: u32 = 1002;
pub const NAME_ARRAY: u32 = 1003;
pub const INT2_ARRAY: u32 = 1005;
pub const INT4_ARRAY: u32 = 1007;
pub const TEXT_ARRAY: u32 = 1009;
pub const BPCHAR_ARRAY: u32 = 1014;
pub const VARCHAR_ARRAY: u32 = 1015;
pub const INT8_ARRAY: u32 = 1016;
pub const FLOAT4_ARRAY: u32 = 1021;
pub const FLOAT8_ARRAY: u32 = 1022;
pub const OID_ARRAY: u32 = 1028;
pub const JSON_ARRAY: u32 = 199;
pub const XML_ARRAY: u32 = 143;
pub const TIMESTAMP_ARRAY: u32 = 1115;
pub const DATE_ARRAY: u32 = 1182;
pub const TIME_ARRAY: u32 = 1183;
pub const TIMESTAMPTZ_ARRAY: u32 = 1185;
pub const INTERVAL_ARRAY: u32 = 1187;
pub const NUMERIC_ARRAY: u32 = 1231;
pub const TIMETZ_ARRAY: u32 = 1270;
pub const UUID_ARRAY: u32 = 2951;
pub const JSONB_ARRAY: u32 = 3807;
pub const RECORD_ARRAY: u32 = 2287;
