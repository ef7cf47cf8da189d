package iso4217

import "strconv"

// Format returns an amount in integer minor units of currency as a decimal
// in major units with the currency's number of minor-unit digits, followed
// by the code: Format(1234, "USD") is "12.34 USD", Format(5, "JPY") is
// "5 JPY", Format(-250, "EUR") is "-2.50 EUR" and Format(1, "BHD") is
// "0.001 BHD". It never goes through a float, so every int64 is exact.
//
// A code that is not valid (see Valid) has no known minor unit: the amount
// is then shown as it is, in minor units, as in "1234 minor units of XYZ",
// rather than guessing where the decimal point goes.
func Format(amountMinor int64, currency string) string {
	d, ok := digits[currency]
	if !ok {
		return strconv.FormatInt(amountMinor, 10) + " minor units of " + currency
	}
	return decimal(amountMinor, d) + " " + currency
}

// decimal writes n / 10^d with exactly d fraction digits.
func decimal(n int64, d int) string {
	// The magnitude as uint64, so that math.MinInt64 has one too.
	mag := uint64(n)
	if n < 0 {
		mag = -mag
	}
	s := strconv.FormatUint(mag, 10)
	if d > 0 {
		for len(s) <= d {
			s = "0" + s
		}
		s = s[:len(s)-d] + "." + s[len(s)-d:]
	}
	if n < 0 {
		s = "-" + s
	}
	return s
}
