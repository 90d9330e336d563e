//! [`Geometry`]: the geometric types (`point`, `line`, `lseg`, `box`, `path`,
//! `polygon`, `circle`).

use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
use ferropg_core::types::geometry as wire;
use postgres_types::{FromSql, IsNull, ToSql, Type};

type BoxError = Box<dyn StdError + Sync + Send>;

/// A point: x and y.
pub type Point = (f64, f64);

/// A value of one of the geometric types; each variant belongs to one type.
#[derive(Debug, Clone, PartialEq)]
pub enum Geometry {
    /// `point`.
    Point(Point),
    /// `line`: the line A·x + B·y + C = 0.
    Line {
        /// A.
        a: f64,
        /// B.
        b: f64,
        /// C.
        c: f64,
    },
    /// `lseg`: a segment between two points.
    LineSegment(Point, Point),
    /// `box`: two opposite corners (the server keeps the upper right one first).
    Box(Point, Point),
    /// `path`: open or closed.
    Path {
        /// Whether the last point joins the first.
        closed: bool,
        /// The points.
        points: Vec<Point>,
    },
    /// `polygon`.
    Polygon(Vec<Point>),
    /// `circle`.
    Circle {
        /// The centre.
        center: Point,
        /// The radius.
        radius: f64,
    },
}

fn accepts(ty: &Type) -> bool {
    [
        Type::POINT,
        Type::LINE,
        Type::LSEG,
        Type::BOX,
        Type::PATH,
        Type::POLYGON,
        Type::CIRCLE,
    ]
    .contains(ty)
}

impl<'a> FromSql<'a> for Geometry {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Geometry, BoxError> {
        Ok(match *ty {
            Type::POINT => {
                let [x, y] = wire::decode_f64s(raw)?;
                Geometry::Point((x, y))
            }
            Type::LINE => {
                let [a, b, c] = wire::decode_f64s(raw)?;
                Geometry::Line { a, b, c }
            }
            Type::LSEG => {
                let [x1, y1, x2, y2] = wire::decode_f64s(raw)?;
                Geometry::LineSegment((x1, y1), (x2, y2))
            }
            Type::BOX => {
                let [x1, y1, x2, y2] = wire::decode_f64s(raw)?;
                Geometry::Box((x1, y1), (x2, y2))
            }
            Type::PATH => {
                let (closed, points) = wire::decode_path(raw)?;
                Geometry::Path { closed, points }
            }
            Type::POLYGON => Geometry::Polygon(wire::decode_points(raw)?),
            Type::CIRCLE => {
                let [x, y, radius] = wire::decode_f64s(raw)?;
                Geometry::Circle {
                    center: (x, y),
                    radius,
                }
            }
            _ => return Err(format!("{} is not a geometric type", ty.name()).into()),
        })
    }

    fn accepts(ty: &Type) -> bool {
        accepts(ty)
    }
}

impl ToSql for Geometry {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let mut buf = Vec::new();
        match (self, ty) {
            (Geometry::Point((x, y)), &Type::POINT) => wire::encode_f64s(&[*x, *y], &mut buf),
            (Geometry::Line { a, b, c }, &Type::LINE) => wire::encode_f64s(&[*a, *b, *c], &mut buf),
            (Geometry::LineSegment((x1, y1), (x2, y2)), &Type::LSEG)
            | (Geometry::Box((x1, y1), (x2, y2)), &Type::BOX) => {
                wire::encode_f64s(&[*x1, *y1, *x2, *y2], &mut buf)
            }
            (Geometry::Path { closed, points }, &Type::PATH) => {
                buf.push(u8::from(*closed));
                wire::encode_points(points, &mut buf)?;
            }
            (Geometry::Polygon(points), &Type::POLYGON) => wire::encode_points(points, &mut buf)?,
            (Geometry::Circle { center, radius }, &Type::CIRCLE) => {
                wire::encode_f64s(&[center.0, center.1, *radius], &mut buf)
            }
            _ => return Err(format!("cannot send {self:?} as {}", ty.name()).into()),
        }
        out.put_slice(&buf);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        accepts(ty)
    }

    postgres_types::to_sql_checked!();
}
