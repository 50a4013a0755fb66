-- Sums that saturate at +Infinity instead of failing.
--
-- A valid energy value is any finite number >= 0 (DESIGN.md), so the sum of
-- two valid readings can exceed the largest double precision number, and
-- PostgreSQL fails a float8 addition that overflows: one such sum in a
-- rollup would fail the whole ingest transaction, and every other caller's
-- readings in it. Sums of the service's statements therefore add like IEEE
-- arithmetic: a total beyond the largest float8 is +Infinity.
--
-- Statements keep the built-in sum() for values below 1e290 (no fewer than
-- 1.7e18 of those can overflow) and pass only larger ones to this aggregate,
-- whose PL/pgSQL step costs about 0.5 us a value: ordinary data never pays it.

CREATE FUNCTION saturating_add(total double precision, amount double precision)
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
BEGIN
    IF total > float8 '1.7976931348623157e308' - amount THEN
        RETURN float8 'Infinity';
    END IF;
    RETURN total + amount;
END
$$;

CREATE AGGREGATE saturating_sum(double precision) (
    SFUNC = saturating_add,
    STYPE = double precision,
    COMBINEFUNC = saturating_add,
    PARALLEL = SAFE
);
