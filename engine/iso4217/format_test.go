package iso4217

import (
	"math"
	"testing"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		amount   int64
		currency string
		want     string
	}{
		{1234, "USD", "12.34 USD"},
		{5, "JPY", "5 JPY"},
		{-250, "EUR", "-2.50 EUR"},
		{1, "BHD", "0.001 BHD"},
		{0, "EUR", "0.00 EUR"},
		{0, "JPY", "0 JPY"},
		{-1, "EUR", "-0.01 EUR"},
		{-5, "KWD", "-0.005 KWD"},
		{100, "EUR", "1.00 EUR"},
		{123456789, "JOD", "123456.789 JOD"},
		{-1000, "ISK", "-1000 ISK"},
		{math.MaxInt64, "USD", "92233720368547758.07 USD"},
		{math.MinInt64, "USD", "-92233720368547758.08 USD"},
		{1234, "XYZ", "1234 minor units of XYZ"},
		{-7, "eur", "-7 minor units of eur"},
	} {
		if got := Format(tc.amount, tc.currency); got != tc.want {
			t.Errorf("Format(%d, %q): got %q, want %q", tc.amount, tc.currency, got, tc.want)
		}
	}
}
