package store

// CredentialSource mirrors keyring.Source until that package lands.
type CredentialSource struct {
	Kind, Namespace, Name, UID, Path string
}
