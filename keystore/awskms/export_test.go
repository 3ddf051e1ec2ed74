package awskms

// NoAnswerError lets the external tests look into a call that got no
// answer (errors.As), which users see only as ErrUnavailable.
type NoAnswerError = noAnswerError
