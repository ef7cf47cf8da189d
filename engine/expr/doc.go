// Package expr compiles and evaluates the expressions used by pipeline
// filters and branch predicates, such as
//
//	status == "APPROVED"
//	amount_minor > 0 && currency in ["EUR", "USD"]
//	has(customer.email) && !endsWith(lower(customer.email), "@example.com")
//
// An expression is compiled once with Compile or CompileBool, optionally
// against an Env describing the record schema, and the resulting Program
// is evaluated per record with Program.Eval or Program.EvalBool. A record
// is a decoded Avro record as a map[string]any; nested records are nested
// map[string]any values.
//
// Compile errors and run-time errors are *Error values carrying the byte
// offset and 1-based column of the problem inside the expression source,
// and print as "expr: column N: message".
//
// # Lexical elements
//
// Spaces, tabs, carriage returns and newlines separate tokens and are
// otherwise ignored.
//
// A field reference is an identifier, optionally followed by dotted
// segments with no spaces around the dots:
//
//	status   customer.email   _meta.source.0
//
// An identifier starts with a letter (any Unicode letter) or an underscore
// and continues with letters, digits and underscores; segments after a dot
// may also start with a digit. A dot always means "look up in a nested
// map": a record key that itself contains a dot cannot be referenced.
//
// The keywords true, false, null, in and not are reserved and cannot be
// used as (the first segment of) a field name. Function names are not
// reserved: len is a field, len(x) a call.
//
// Integer literals are decimal digits and denote int64 values; a literal
// outside the int64 range is a compile error (-9223372036854775808 is
// accepted). Float literals are decimal with a fraction and/or an exponent:
// 1.5, 2e3, 1.5e-3. A digit is required before the dot (write 0.5, not .5)
// and after it. There are no hexadecimal, octal or underscore-separated
// literals.
//
// String literals are enclosed in double or single quotes and may span
// lines. Backslash escapes: \n \r \t \b \f \v \a \0 \\ \" \' \/, \xHH (one
// byte), \uHHHH and \UHHHHHHHH (a Unicode code point, UTF-8 encoded). Any
// other escape is a compile error.
//
// true and false are the bool literals; null is the null literal. A list
// literal is a bracketed, comma-separated sequence of expressions; a
// trailing comma is allowed: [1, 2, 3], ["EUR", "USD",], [].
//
// # Grammar
//
//	Expr           = Or .
//	Or             = And { "||" And } .
//	And            = Not { "&&" Not } .
//	Not            = "!" Not | Comparison .
//	Comparison     = Membership [ CompareOp Membership ] .
//	CompareOp      = "==" | "!=" | "<" | "<=" | ">" | ">=" .
//	Membership     = Additive [ ( "in" | "not" "in" ) Additive ] .
//	Additive       = Multiplicative { ( "+" | "-" ) Multiplicative } .
//	Multiplicative = Unary { ( "*" | "/" | "%" ) Unary } .
//	Unary          = "-" Unary | Primary .
//	Primary        = Literal | Field | Call | List | "(" Expr ")" .
//	Call           = identifier "(" [ Expr { "," Expr } [ "," ] ] ")" .
//	List           = "[" [ Expr { "," Expr } [ "," ] ] "]" .
//	Literal        = int | float | string | "true" | "false" | "null" .
//	Field          = identifier { "." segment } .
//
// # Operators and precedence
//
// From lowest to highest precedence:
//
//	||                       logical or (short-circuit)
//	&&                       logical and (short-circuit)
//	!                        logical not (unary)
//	== != < <= > >=          comparison (non-associative)
//	in  not in               list membership (non-associative)
//	+ -                      addition / string concatenation, subtraction
//	* / %                    multiplication, division, remainder
//	-                        numeric negation (unary)
//	( )                      grouping
//
// Binary operators of one level associate to the left, except comparisons
// and membership, which do not chain: a < b < c and a in b in c are
// compile errors. Because ! binds more loosely than comparisons, !a == b
// means !(a == b); write (!a) == b for the other reading. For the same
// reason ! cannot appear as an operand of a comparison, membership or
// arithmetic operator without parentheses: a == (!b).
//
// # Types
//
// Values have one of the types null, bool, int (int64), float (float64),
// string, time (time.Time), list and map. Record values are converted as
// follows; any other Go type is a run-time error when it is used:
//
//	nil                                     null
//	bool                                    bool
//	int, int8, int16, int32, int64          int
//	uint8, uint16, uint32, uint, uint64     int (above MaxInt64: error)
//	float32, float64                        float (float32 is widened exactly,
//	                                        so float32(0.1) != 0.1)
//	string                                  string
//	time.Time                               time
//	[]any, []string, []int, []int64,        list
//	[]float64
//	map[string]any                          map
//
// Static types. When Compile is given an Env, each field has the static
// type the Env reports and operand types are checked at compile time; a
// field of static type Any, and every field when the Env is nil, is
// checked only at run time, against its actual value, by the same rules.
// A static type never excludes null: any field may be null at run time.
//
// # Semantics
//
// Equality (== and !=) is defined between two numbers (int and float
// compare by exact mathematical value: 1 == 1.0, and
// 9007199254740993 != 9007199254740992.0), two strings (byte-wise), two
// bools and two times (the same instant, whatever the location). null may
// be compared with any value: null == null is true, null == x is false
// for any non-null x. Lists and maps cannot be compared. Comparing any
// other mix of types, such as an int with a string, is an error: at
// compile time when both static types are known, at run time otherwise.
// A NaN float is equal to nothing, including itself.
//
// Ordering (< <= > >=) is defined between two numbers (exactly, as for
// equality; every ordering involving NaN is false), two strings (byte-wise
// lexicographic order) and two times. Ordering anything else, including
// null, is an error.
//
// Membership: x in L is true when some element of the list L equals x
// under ==, and x not in L is its negation. Elements are compared left to
// right and the search stops at the first match; an element whose type
// cannot be compared with x is an error, exactly as for ==. null in L is
// true when L has a null element. L is a list literal or an expression of
// list type (typically a field holding a slice); a list literal used with
// in is never materialised. x may not be a list or map.
//
// Arithmetic: + - * / on numbers; int op int is int, and is float as soon
// as either operand is float. Integer division truncates toward zero
// (7 / 2 == 3, -7 / 2 == -3) and % is the remainder with the sign of the
// dividend, defined on ints only. Integer overflow and division (or
// remainder) by zero, for ints and floats alike, are errors. + on two
// strings concatenates them. Unary - negates a number.
//
// Logic: && and || take bool operands and evaluate the right operand only
// when needed, so has(x) && x > 0 never fails when x is absent. ! negates
// a bool. A non-bool operand, including null, is an error.
//
// Field access: a field missing from the record is null, and so is a
// dotted path whose intermediate map is missing or null. A dotted path
// through a value that is not a map[string]any is a run-time error (except
// in has, which reports false).
//
// # Null semantics
//
// null only takes part in == and != (and therefore in and not in), and in
// has(). Every other use of a null value is a run-time error naming the
// field, "field \"x\" is null": ordering comparisons, arithmetic, unary -,
// !, && and ||, and function arguments. Guard nullable fields with has:
//
//	has(discount_minor) && discount_minor > 0
//
// With the null literal these uses are compile errors.
//
// # Functions
//
//	has(field)             true when the field is present and not null; the
//	                       argument must be a field reference; never fails
//	lower(s), upper(s)     s converted to lower / upper case (Unicode)
//	len(x)                 number of characters (Unicode code points) of a
//	                       string, elements of a list or keys of a map
//	startsWith(s, prefix)  whether s begins with prefix
//	endsWith(s, suffix)    whether s ends with suffix
//	contains(s, sub)       whether sub occurs in s
//
// String arguments must be strings (not null); the arguments of
// startsWith, endsWith and contains are compared byte-wise. Calling an
// unknown function or passing the wrong number of arguments is a compile
// error.
//
// # Errors
//
// Every error is an *Error. Compile errors include syntax errors, unknown
// fields (with a non-nil Env), unknown functions, static type errors and
// errors found while evaluating constant sub-expressions (1/0). They are
// located at the offending token: the operator of an invalid operation,
// the field of an unknown field, the argument of a function, the opening
// quote of an unterminated string, the end of the source for an
// incomplete expression. Run-time errors are located the same way. Compile
// reports only the first error.
//
// # Evaluation cost
//
// Programs are trees of closures built at compile time: dotted paths are
// split and constants folded once, and type dispatch uses type switches,
// not reflection. Evaluating comparisons, membership tests, logic and the
// bool functions allocates nothing; only lower, upper, string
// concatenation, list literals used as values and errors allocate.
package expr
