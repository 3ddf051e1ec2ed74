package awskms

// The Backend rotates store keys held in KMS: RotateKey calls
// RotateOnDemand on the key's ARN (KMS keeps the old backing keys, so
// messages under them still decrypt), and SetRotationSettings with
// KMSAutomatic calls EnableRotation. KMS keys are never scheduled for
// deletion by the store: an ARN may be shared beyond it.
// It is a keystore.OnDemandRotator and keystore.AutoRotator (asserted in
// keystore's tests, so that awskms need not import the store).
