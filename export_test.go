package vippslogin

// PluginVersion is the version the Vipps-System-Plugin-Version header
// carries by default.
const PluginVersion = pluginVersion

// LoginFailure returns err as the Client hands a failed login to
// Config.ErrorHandler: with the ways forward that PageFor shows.
func LoginFailure(loginURL, home string, err error) error {
	return &loginError{loginURL: loginURL, home: home, err: err}
}

// Refused returns err as the Client hands a login that Config.AfterLogin
// refused with err to Config.ErrorHandler.
func Refused(err error) error { return &loginError{err: joinRefused(err)} }

// StepUpACR is the acr of a login confirmed in the app.
const StepUpACR = stepUpACR
